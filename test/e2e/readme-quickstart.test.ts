import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, freePort } from '../helpers/server';

/** The shell lines of the first ```sh block after `heading` in README.md, comments dropped. */
function readmeCommands(heading: string): string[] {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README.md has no "${heading}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '');
}

/**
 * A new terminal's environment: none of the variables `npm test` sets (npm_*, node_modules/.bin on
 * PATH, INGEST_*), so that a command works only if it works for a newcomer. What differs: PORT, so
 * that the test does not depend on 8080 being free, and npm working offline from its usual cache.
 */
function newTerminalEnv(port: number): NodeJS.ProcessEnv {
  const kept = ['HOME', 'USER', 'LANG', 'LC_ALL', 'TMPDIR', 'TERM'];
  const env: NodeJS.ProcessEnv = Object.fromEntries(kept.map((name) => [name, process.env[name]]));
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !dir.split(path.sep).includes('node_modules'))
    .join(path.delimiter);
  // npm installs from its cache (filled by the checkout's own `npm ci`): tests reach no network.
  if (process.env.npm_config_cache) env.npm_config_cache = process.env.npm_config_cache;
  return { ...env, PORT: String(port), npm_config_offline: 'true' };
}

/** Removes npx's cache entries for `folder` (npx installs a local package there on first use). */
function forgetNpxEntries(folder: string, env: NodeJS.ProcessEnv): void {
  const list = spawnSync('npm', ['cache', 'npx', 'ls'], { env, encoding: 'utf8' });
  for (const line of list.stdout.split('\n')) {
    const [key, where] = line.split(': ');
    if (key && where?.trim() === folder) spawnSync('npm', ['cache', 'npx', 'rm', key], { env });
  }
}

/**
 * A newcomer's path, as the README spells it, in a new terminal: a fresh clone, `npx gcs-bq-ingest`
 * before anything is built, the quick start's `npm ci && npm start`, every command of "While it
 * runs" in another shell, and the copied file of "Run locally".
 */
describe("the README's quick start, run as written in a fresh clone", function () {
  this.timeout(300_000);
  let clone: string;
  let service: ChildProcess | undefined;
  let output = '';
  let env: NodeJS.ProcessEnv;

  const waitFor = async (pattern: RegExp, ms: number) => {
    const until = Date.now() + ms;
    while (!pattern.test(output)) {
      if (Date.now() > until) throw new Error(`no ${pattern} in:\n${output}`);
      if (service?.exitCode !== null) throw new Error(`npm start exited:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    clone = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-newcomer-'));
    const cloned = spawnSync('git', ['clone', '--quiet', REPO_ROOT, clone], { encoding: 'utf8' });
    expect(cloned.status, cloned.stderr).to.equal(0);
    env = newTerminalEnv(await freePort());
  });
  after(async () => {
    if (service?.pid !== undefined && service.exitCode === null) {
      const exited = new Promise((r) => service?.once('exit', r));
      process.kill(-service.pid, 'SIGINT'); // npm, its shell, dev and the receiver: the whole group
      const timer = setTimeout(() => service?.pid && process.kill(-service.pid, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    forgetNpxEntries(clone, env);
    fs.rmSync(clone, { recursive: true, force: true });
  });

  it('runs `npx gcs-bq-ingest` right after `npm ci`, before anything is built', () => {
    const run = (command: string) =>
      spawnSync('bash', ['-c', command], { cwd: clone, env, encoding: 'utf8', timeout: 240_000 });
    const installed = run('npm ci --no-audit --no-fund');
    expect(installed.status, installed.stderr).to.equal(0);
    expect(fs.existsSync(path.join(clone, 'dist'))).to.equal(false);
    const help = run('npx gcs-bq-ingest --help');
    expect(help.status, `${help.stdout}${help.stderr}`).to.equal(0);
    expect(help.stdout).to.match(/^Usage: gcs-bq-ingest /);
  });

  it('starts the service and loads the demo with the quick start', async () => {
    const [start, test, ...rest] = readmeCommands('## Quick start');
    expect(start).to.equal('npm ci && npm start');
    // `npm test` is what CI runs (.ci/run); it is not run again inside itself.
    expect(test).to.equal('npm test');
    expect(rest).to.deep.equal([]);
    service = spawn('bash', ['-c', start as string], { cwd: clone, env, detached: true });
    service.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    service.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(
      /^loaded\s+gs:\/\/demo\/us-states\.csv -> \S*ingest\.us_states \(50 rows\)$/m,
      240_000,
    );
    await waitFor(/^start-up scan: /m, 30_000);
  });

  it('runs every command of "While it runs" in another shell', () => {
    const commands = readmeCommands('While it runs');
    expect(commands, 'README "While it runs" commands').to.have.length.at.least(1);
    const outputs = commands.map((command) => {
      const run = spawnSync('bash', ['-c', command], {
        cwd: clone,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status, `${command}\n${run.stdout}${run.stderr}`).to.equal(0);
      return run.stdout;
    });
    const [tables, history, emit, forced] = outputs;
    expect(tables).to.match(/^ingest\.us_states\s+50$/m);
    expect(history).to.match(/gs:\/\/demo\/us-states\.csv\s+loaded\s+\S*ingest\.us_states\s+50\s/);
    expect(emit).to.match(/^duplicate\s+gs:\/\/demo\/us-states\.csv /);
    expect(forced).to.match(
      /^loaded\s+gs:\/\/demo\/us-states\.csv .*\(50 rows, appended again: forced\)$/m,
    );
    const after = spawnSync('bash', ['-c', 'npx gcs-bq-ingest tables'], {
      cwd: clone,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(after.stdout, 'what the README says the forced load leaves').to.match(
      /^ingest\.us_states\s+100$/m,
    );
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readme).to.include('--force  # append its 50 rows again: 100');
    expect(readme).to.include('(50 rows, appended again: forced)');
  });

  it('loads a copied file as "Run locally" says', async () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readme).to.include(
      '`loaded    gs://demo/sales-orders.csv -> ingest.sales_orders (3 rows)`, and `tables` lists it.',
    );
    const [copy, tables, ...rest] = readmeCommands('### Run locally');
    expect(copy).to.equal('cp fixtures/sales-orders.csv local-data/buckets/demo/');
    expect(tables).to.equal('npx gcs-bq-ingest tables');
    expect(rest).to.deep.equal([]);
    const run = (command: string) =>
      spawnSync('bash', ['-c', command], { cwd: clone, env, encoding: 'utf8', timeout: 60_000 });
    const copied = run(copy as string);
    expect(copied.status, copied.stderr).to.equal(0);
    await waitFor(
      /^loaded\s+gs:\/\/demo\/sales-orders\.csv -> \S*ingest\.sales_orders \(3 rows\)$/m,
      60_000,
    );
    const listed = run(tables as string);
    expect(listed.status, `${listed.stdout}${listed.stderr}`).to.equal(0);
    expect(listed.stdout).to.match(/^ingest\.sales_orders\s+3$/m);
  });
});
