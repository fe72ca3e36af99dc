import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, freePort } from '../helpers/server';

const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** `gcs-bq-ingest dev` as a user runs it, reading its output line by line. */
class Dev {
  readonly lines: string[] = [];
  readonly process: ChildProcess;
  private waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  constructor(cwd: string, env: Record<string, string>) {
    this.process = spawn(process.execPath, [CLI, 'dev'], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) =>
          w.pattern.test(line) ? (w.resolve(line), false) : true,
        );
      }
    };
    this.process.stdout?.on('data', onData);
    this.process.stderr?.on('data', onData);
  }

  waitFor(pattern: RegExp, ms = 15_000): Promise<string> {
    const seen = this.lines.find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line matching ${pattern} in:\n${this.lines.join('\n')}`)),
        ms,
      );
      this.waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGTERM');
    await exited;
  }
}

describe('gcs-bq-ingest dev', function () {
  this.timeout(120_000);
  let dir: string;
  let port: number;
  let dev: Dev | undefined;
  const env = () => ({
    LOCAL_DATA_DIR: path.join(dir, 'local-data'),
    PORT: String(port),
    INGEST_CONFIG: '',
  });
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { ...process.env, ...env() },
      encoding: 'utf8',
      timeout: 30_000,
    });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-dev-'));
    port = await freePort();
  });
  afterEach(async () => dev?.stop());
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('seeds and loads the demo, loads a copied file within a second, and lists tables while running', async () => {
    dev = new Dev(dir, env());
    await dev.waitFor(/^loaded\s+gs:\/\/demo\/us-states\.csv -> \S*ingest\.us_states \(50 rows\)$/);

    const target = path.join(dir, 'local-data', 'buckets', 'drop', 'in', 'new file.csv');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const copied = Date.now();
    fs.writeFileSync(target, 'a,b\n1,2\n3,4\n');
    await dev.waitFor(
      /^loaded\s+gs:\/\/drop\/in\/new file\.csv -> \S*ingest\.new_file \(2 rows\)$/,
      5_000,
    );
    expect(Date.now() - copied).to.be.lessThan(1_500);

    const tables = cli('tables');
    expect(tables.status, tables.stderr).to.equal(0);
    expect(tables.stdout)
      .to.match(/ingest\.us_states\s+50/)
      .and.match(/ingest\.new_file\s+2/);

    const emitted = cli(
      'emit',
      path.join('local-data', 'buckets', 'demo', 'us-states.csv'),
      '--url',
      `http://127.0.0.1:${port}/`,
    );
    expect(emitted.status, emitted.stderr).to.equal(0);
    expect(emitted.stdout).to.match(/^duplicate\s+gs:\/\/demo\/us-states\.csv/);

    fs.writeFileSync(target, 'a,b\n5,6\n');
    await dev.waitFor(
      /^loaded\s+gs:\/\/drop\/in\/new file\.csv -> \S*ingest\.new_file \(1 rows\)$/,
      5_000,
    );
  });

  it('seeds once: a restart neither re-creates a deleted demo file nor loads anything twice', async () => {
    fs.rmSync(path.join(dir, 'local-data', 'buckets', 'demo', 'us-states.csv'));
    dev = new Dev(dir, env());
    await dev.waitFor(/^duplicate\s+gs:\/\/drop\/in\/new file\.csv/);
    await new Promise((r) => setTimeout(r, 500));
    expect(
      fs.existsSync(path.join(dir, 'local-data', 'buckets', 'demo', 'us-states.csv')),
    ).to.equal(false);
    expect(dev.lines.filter((l) => /^loaded/.test(l))).to.deep.equal([]);
  });

  it('stops its receiver when stopped', async () => {
    dev = new Dev(dir, env());
    await dev.waitFor(/^receiver on/);
    await dev.stop();
    const health = await fetch(`http://127.0.0.1:${port}/health`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(health).to.equal('refused');
  });

  it('stops its receiver even when killed with SIGKILL', async () => {
    dev = new Dev(dir, env());
    await dev.waitFor(/^receiver on/);
    const exited = new Promise((r) => dev?.process.once('exit', r));
    dev.process.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 15_000;
    let health = 'answered';
    while (health === 'answered' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      health = await fetch(`http://127.0.0.1:${port}/health`).then(
        () => 'answered',
        () => 'refused',
      );
    }
    expect(health).to.equal('refused');
  });

  it('stops at start with one line on a bad configuration', () => {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'routes: [{match: "*.csv", write: upsert}]\n');
    const result = spawnSync(process.execPath, [CLI, 'dev'], {
      cwd: dir,
      env: { ...process.env, ...env(), INGEST_CONFIG: 'bad.yaml' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).to.equal(1);
    expect(result.stderr.trim().split('\n')).to.have.length(1);
    expect(result.stderr).to.match(
      /^gcs-bq-ingest: configuration error: bad\.yaml: routes\[0\]\.write: /,
    );
  });
});
