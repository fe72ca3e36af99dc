import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { skipSuite } from './skips';

/** What gcloud says when it has parsed every argument and stops only for want of an account. */
export const NO_ACCOUNT =
  /You do not currently have an active account selected|no credentialed accounts/i;

export function findGcloud(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, 'gcloud');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/**
 * The gcloud to test with. Where there is none the suite is skipped with the reason, unless
 * REQUIRE_GCLOUD=1 (as in CI), which makes a missing gcloud a failure.
 */
export function gcloudOrSkip(context: Mocha.Context): string {
  const found = findGcloud();
  if (found) return found;
  if (process.env.REQUIRE_GCLOUD === '1')
    throw new Error('gcloud is not on PATH, and REQUIRE_GCLOUD=1');
  return skipSuite(
    context,
    'the Google Cloud CLI (gcloud) is not on PATH',
    'set REQUIRE_GCLOUD=1 to fail instead',
  );
}

/** No credentials, no prompts, no metadata server; anything past the account check would meet a closed port. */
export function isolatedEnv(config: string): NodeJS.ProcessEnv {
  const closed = 'http://127.0.0.1:9/';
  return {
    PATH: process.env.PATH,
    HOME: config,
    LANG: 'C.UTF-8',
    CLOUDSDK_CONFIG: config,
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDBUILD: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_EVENTARC: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER: closed,
  };
}

// --- The installed Google Cloud CLI as the judge of a command ---

export interface Verdict {
  argv: string[];
  code: number | null;
  stderr: string;
  ms: number;
}

export function runGcloud(
  gcloud: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<Verdict> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      gcloud,
      argv.slice(1),
      { env, timeout: 30_000, encoding: 'utf8' },
      (error, _stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ argv: [...argv], code, stderr, ms: Date.now() - started });
      },
    );
  });
}

export async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size)
    results.push(...(await Promise.all(items.slice(i, i + size).map(work))));
  return results;
}

/** Well-formed means: gcloud parsed every argument and stopped only because no account is signed in. */
export function problem(v: Verdict): string | undefined {
  if (v.code === 1 && NO_ACCOUNT.test(v.stderr)) return undefined;
  const error =
    v.stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? v.stderr.trim().split('\n')[0];
  return `exit ${v.code} after ${v.ms} ms: ${v.argv.join(' ')}\n    ${error}`;
}

/**
 * Fakes for running a script as written without touching Google Cloud: gcloud and bq record each
 * call (NUL-separated words, one file per call) and answer as for a new project (nothing exists; a
 * describe, or a create asked for a value, prints a plausible one); npx runs this repository's CLI; npm does nothing.
 */
const FAKES: Record<string, string> = {
  gcloud: `#!/usr/bin/env bash
n=$(( $(cat "$FAKE_LOG/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_LOG/count"
printf '%s\\0' gcloud "$@" > "$FAKE_LOG/$n"
case "$*" in
  "projects describe "*) echo 123456789012 ;;
  "storage service-agent"*) echo service-123456789012@gs-project-accounts.iam.gserviceaccount.com ;;
  *"--format=value(transport.pubsub.subscription)"*) echo "projects/test-project/subscriptions/eventarc-$4-sub" ;;
  "beta monitoring channels create "*) echo projects/test-project/notificationChannels/1234567890 ;;
  *" describe "*"--format=none"*) exit 1 ;;
esac
`,
  bq: `#!/usr/bin/env bash
n=$(( $(cat "$FAKE_LOG/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_LOG/count"
printf '%s\\0' bq "$@" > "$FAKE_LOG/$n"
`,
  npx: `#!/usr/bin/env bash
[ "$1" = gcs-bq-ingest ] || { echo "npx $1: not faked" >&2; exit 1; }
shift
exec "$NODE" "$REPO/dist/src/cli/main.js" "$@"
`,
  npm: `#!/usr/bin/env bash
true
`,
};

/** Runs `script` with bash and the fakes first on PATH, in `cwd`; returns every gcloud and bq call in order. */
export function recordCommands(
  script: string,
  cwd: string,
  env: Record<string, string> = {},
): string[][] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-gcloud-'));
  try {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    for (const [name, text] of Object.entries(FAKES))
      fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'script.sh'), script);
    const run = () =>
      execFileSync('bash', [path.join(dir, 'script.sh')], {
        cwd,
        env: {
          PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
          HOME: dir,
          FAKE_LOG: dir,
          NODE: process.execPath,
          REPO: path.resolve(__dirname, '..', '..', '..'),
          ...env,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
      });
    try {
      run();
    } catch (error) {
      throw new Error(
        `the script failed (${String((error as { status?: number }).status)}): ${(error as { stderr?: string }).stderr ?? ''}`,
        {
          cause: error,
        },
      );
    }
    const count = Number(fs.readFileSync(path.join(dir, 'count'), 'utf8'));
    return Array.from({ length: count }, (_, i) =>
      fs
        .readFileSync(path.join(dir, String(i + 1)), 'utf8')
        .split('\0')
        .slice(0, -1),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
