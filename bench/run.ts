import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cloudPath } from './cloud';
import { coldStart } from './coldstart';
import { MB, type BenchOptions, type BenchReport, type BenchResult } from './lib';
import { localIngest } from './local-ingest';
import { quotaDay } from './quota-day';
import { REPO_ROOT } from '../test/helpers/server';
import { receiverOverhead } from './receiver';
import { smallFiles } from './small-files';

// `npm run bench [-- --quick] [-- --only receiver,cloud]`: every benchmark against its baseline,
// measured in this run; prints the ratios and writes bench/results.json.

const BENCHMARKS: Record<string, (options: BenchOptions) => Promise<BenchReport>> = {
  receiver: receiverOverhead,
  coldstart: coldStart,
  'local-ingest': localIngest,
  'small-files': smallFiles,
  cloud: cloudPath,
  'quota-day': quotaDay,
};

const BENCH_DIR = path.resolve(__dirname, '..', '..', 'bench');

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const sourceAt = argv.indexOf('--source');
  const source = sourceAt >= 0 ? path.resolve(argv[sourceAt + 1] ?? '.') : REPO_ROOT;
  const profileDir = argv.includes('--cpu-prof')
    ? path.join(BENCH_DIR, '.work', 'profiles')
    : undefined;
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : Object.keys(BENCHMARKS);
  const unknown = only.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}\n`,
    );
    return 2;
  }
  // Every process, this one included: no metadata server, a fixed project, loopback only.
  process.env.METADATA_SERVER_DETECTION = 'none';
  process.env.GOOGLE_CLOUD_PROJECT = 'bench-project';

  fs.mkdirSync(path.join(BENCH_DIR, '.work'), { recursive: true });
  const work = fs.mkdtempSync(path.join(BENCH_DIR, '.work', 'run-'));
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const started = performance.now();
  const results: BenchResult[] = [];
  const notes: string[] = [];
  try {
    for (const name of only) {
      const t0 = performance.now();
      log(`${name}${quick ? ' (quick)' : ''} …`);
      const dir = path.join(work, name);
      fs.mkdirSync(dir);
      const report = await (BENCHMARKS[name] as (options: BenchOptions) => Promise<BenchReport>)({
        quick,
        work: dir,
        source,
        profileDir,
        log,
      });
      results.push(...report.results);
      notes.push(...report.notes);
      fs.rmSync(dir, { recursive: true, force: true });
      log(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    // bench/.work itself goes too, unless it keeps something (CPU profiles).
    try {
      fs.rmdirSync(path.dirname(work));
    } catch {
      // not empty: kept
    }
  }

  const machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim() ?? 'unknown',
    memory: `${(os.totalmem() / 1024 / MB).toFixed(1)} GiB`,
    node: process.version,
    date: new Date().toISOString(),
    command: `npm run bench${quick ? ' -- --quick' : ''}`,
  };
  // A partial run (--only) or another checkout (--source) does not replace the recorded results;
  // a quick run records its own, beside the work files, so the full run's stay in bench/results.json.
  const complete = onlyAt < 0 && sourceAt < 0;
  const resultsFile = quick
    ? path.join(BENCH_DIR, '.work', 'results-quick.json')
    : path.join(BENCH_DIR, 'results.json');
  if (complete) {
    fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
    fs.writeFileSync(resultsFile, `${JSON.stringify({ machine, benchmarks: results }, null, 2)}\n`);
  }
  log('');
  log(table(results));
  for (const note of notes) log(`- ${note}`);
  if (profileDir) log(`CPU profiles of the services: ${profileDir}`);
  const took = ((performance.now() - started) / 1000).toFixed(0);
  log(
    `\n${machine.cpus} × ${machine.model}, ${machine.memory}, Node ${machine.node}; ${took} s` +
      (complete ? `; ${path.relative(process.cwd(), resultsFile)} written` : ''),
  );
  return 0;
}

/** A Markdown table, as pasted into the README. */
export function table(results: BenchResult[]): string {
  const rows = [
    ['benchmark', 'value', 'baseline', 'ratio', 'target', 'met'],
    ['---', '---:', '---:', '---:', '---', '---'],
    ...results.map((r) => [
      r.name,
      `${r.value} ${r.unit}`,
      `${r.baseline} ${r.unit}`,
      String(r.ratio),
      r.target ?? 'reported',
      r.met === null ? '–' : r.met ? 'yes' : '**no**',
    ]),
  ];
  return rows.map((row) => `| ${row.join(' | ')} |`).join('\n');
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
