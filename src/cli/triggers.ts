import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { errorMessage, firstLine } from '../core/errors';
import {
  AGENT_RETRY_SECONDS,
  checkDefinition,
  planTriggers,
  readDefinition,
  renderScript,
  renderStep,
  resolveArgv,
  requireValues,
  resolveValues,
  type Env,
  type Plan,
} from '../deploy';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs one command without a shell. */
export type Runner = (argv: readonly string[]) => Promise<RunResult>;

export interface TriggersDeps {
  env: Env;
  run: Runner;
  /** Standard output: the script (--print) or the progress of --apply. */
  out: (text: string) => void;
  /** Standard error: the output of a command that failed. */
  err: (text: string) => void;
  /** Waits before a create is tried again. */
  sleep: (ms: number) => Promise<unknown>;
}

export const defaultDeps: TriggersDeps = {
  env: process.env,
  run: (argv) => runCommand(argv),
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  sleep: (ms) => delay(ms),
};

interface TriggersOptions {
  print?: boolean;
  apply?: boolean;
  project?: string;
  region?: string;
  bucket?: string;
  dir: string;
}

export function triggersCommand(deps: TriggersDeps = defaultDeps): Command {
  return new Command('triggers')
    .description(
      'turn the trigger definitions in eventarc/ into gcloud commands: print them (default) or run them',
    )
    .addOption(
      new Option('--print', 'print the commands as a bash script (the default)').conflicts('apply'),
    )
    .addOption(
      new Option(
        '--apply',
        'run the commands, stopping at the first failure (a trigger create refused while the Eventarc service agent is provisioned is tried again for up to 5 minutes)',
      ),
    )
    .option(
      '--project <id>',
      'Google Cloud project (default: $GOOGLE_CLOUD_PROJECT or $CLOUDSDK_CORE_PROJECT)',
    )
    .option('--region <region>', 'region of the service and the triggers (default: $INGEST_REGION)')
    .option('--bucket <name>', 'bucket the storage trigger watches (default: $INGEST_BUCKET)')
    .option('--dir <dir>', 'folder of trigger definitions', 'eventarc')
    .action(async (options: TriggersOptions) => {
      const plan = loadPlan(options, deps.env);
      if (options.apply) await applyPlan(plan, deps);
      else deps.out(renderScript(plan));
    });
}

function loadPlan(options: TriggersOptions, env: Env): Plan {
  const values = resolveValues(
    { PROJECT_ID: options.project, REGION: options.region, BUCKET: options.bucket },
    env,
  );
  const documents = readDefinitions(options.dir);
  // A missing flag is named as such, before any definition says it lacks the value.
  requireValues(
    documents.map((d) => d.raw),
    values,
  );
  const definitions = documents.map((d) => checkDefinition(d.file, d.raw, values));
  return planTriggers(definitions, values.PROJECT_ID);
}

/** The trigger definitions in `dir` (its *.yaml files, in name order), each read but not checked. */
export function readDefinitions(dir: string): { file: string; raw: unknown }[] {
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  } catch (error) {
    throw new Error(`${dir}: cannot read the trigger definitions: ${errorMessage(error)}`);
  }
  if (files.length === 0) throw new Error(`${dir}: no trigger definitions (*.yaml)`);
  return files.sort().map((f) => {
    const file = path.join(dir, f);
    return { file, raw: readDefinition(file, fs.readFileSync(file, 'utf8')) };
  });
}

/**
 * Runs the plan's steps in order; the first failure prints its output and stops with an error. A
 * create with `retryWhile` whose output says that text is run again after each AGENT_RETRY_SECONDS.
 */
export async function applyPlan(
  plan: Plan,
  deps: Pick<TriggersDeps, 'run' | 'out' | 'err' | 'sleep'>,
): Promise<void> {
  const captured: Record<string, string> = {};
  const run = async (argv: readonly string[], retryWhile?: string): Promise<RunResult> => {
    let result = await deps.run(argv);
    for (const seconds of retryWhile === undefined ? [] : AGENT_RETRY_SECONDS) {
      if (result.code === 0 || !`${result.stderr}${result.stdout}`.includes(retryWhile ?? ''))
        break;
      deps.out(`  ${firstLine(result.stderr) || firstLine(result.stdout)}\n`);
      deps.out(`  not ready yet; trying again in ${seconds} s\n`);
      await deps.sleep(seconds * 1000);
      result = await deps.run(argv);
    }
    if (result.code !== 0) {
      deps.err(result.stderr || result.stdout);
      const reason =
        firstLine(result.stderr) || firstLine(result.stdout) || `exit code ${result.code}`;
      throw new Error(`${argv.slice(0, 4).join(' ')} failed: ${reason}`);
    }
    return result;
  };
  for (const section of plan.sections) {
    deps.out(`# ${section.title}\n`);
    for (const step of section.steps) {
      deps.out(`${renderStep(step)}\n`);
      if (step.kind === 'run') {
        await run(resolveArgv(step.argv, captured));
      } else if (step.kind === 'ensure') {
        const check = await deps.run(resolveArgv(step.check, captured));
        const found = step.exists !== 'prints' || check.stdout.trim() !== '';
        if (check.code === 0 && found) deps.out('  exists, kept as it is\n');
        else await run(resolveArgv(step.create, captured), step.retryWhile);
      } else {
        let value = (await run(resolveArgv(step.argv, captured))).stdout.trim();
        if (value === '' && step.kind === 'find')
          value = (await run(resolveArgv(step.create, captured))).stdout.trim();
        if (value === '')
          throw new Error(`${step.argv.slice(0, 4).join(' ')} printed nothing for ${step.into}`);
        captured[step.into] = value;
        deps.out(`  ${step.into}=${value}\n`);
      }
    }
  }
  deps.out('done\n');
}

/** child_process without a shell; a missing program is exit code 127 with the reason. */
export function runCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunResult> {
  const [program, ...args] = argv;
  if (program === undefined) return Promise.reject(new Error('empty command'));
  return new Promise((resolve) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === 'ENOENT' ? `${program} is not installed or not on PATH` : error.message;
      resolve({ code: 127, stdout, stderr: `${reason}\n` });
    });
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }),
    );
  });
}
