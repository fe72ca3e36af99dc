import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { queryDuckDb } from '../helpers/duckdb';
import { CLI } from '../helpers/cli';
import { Dev } from '../helpers/dev';
import { freePort } from '../helpers/server';

/** Another process holding the DuckDB file (and its lock) until released. */
async function holdWarehouse(file: string): Promise<{ release(): Promise<void> }> {
  const script = `
    const { DuckDBInstance } = require(${JSON.stringify(require.resolve('@duckdb/node-api'))});
    (async () => {
      for (;;) {
        try { globalThis.held = await DuckDBInstance.create(${JSON.stringify(file)}); break; }
        catch { await new Promise((r) => setTimeout(r, 50)); }
      }
      console.log('held');
      setInterval(() => undefined, 1000);
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve()),
  );
  return {
    async release() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs `bash -c script` in `cwd` to its end. */
function bash(cwd: string, script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, stdio: 'inherit' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bash: ${code}`))));
  });
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

  it('seeds and loads the demo, loads a copied file, and lists tables while running', async () => {
    dev = new Dev(dir, env());
    await dev.waitFor(/^loaded\s+gs:\/\/demo\/us-states\.csv -> \S*ingest\.us_states \(50 rows\)$/);

    const target = path.join(dir, 'local-data', 'buckets', 'drop', 'in', 'new file.csv');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, 'a,b\n1,2\n3,4\n');
    await dev.waitFor(
      /^loaded\s+gs:\/\/drop\/in\/new file\.csv -> \S*ingest\.new_file \(2 rows\)$/,
      5_000,
    );

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

  it('seeds once: a restart neither re-creates a deleted demo file nor sends what was loaded', async () => {
    fs.rmSync(path.join(dir, 'local-data', 'buckets', 'demo', 'us-states.csv'));
    dev = new Dev(dir, env());
    await dev.waitFor(/^start-up scan: 1 already loaded or rejected \(not sent again\), 0 sent/);
    expect(
      fs.existsSync(path.join(dir, 'local-data', 'buckets', 'demo', 'us-states.csv')),
    ).to.equal(false);
    expect(dev.lines.filter((l) => /gs:\/\//.test(l))).to.deep.equal([]);
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

  describe('as a local Eventarc', () => {
    let data: string;
    let bucketsDir: string;
    const local = () => ({ ...env(), LOCAL_DATA_DIR: data });
    const write = (relative: string, content: string) => {
      const file = path.join(bucketsDir, relative);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      return file;
    };
    const emit = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, 'emit', ...args], {
        cwd: dir,
        env: { ...process.env, ...local() },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const query = (sql: string) => queryDuckDb(path.join(data, 'warehouse.duckdb'), sql);
    const outcomes = (d: Dev, uri: string) =>
      d.lines.filter((l) => l.includes(` ${uri} `) || l.endsWith(` ${uri}`));

    beforeEach(() => {
      data = fs.mkdtempSync(path.join(dir, 'data-'));
      bucketsDir = path.join(data, 'buckets');
      fs.mkdirSync(bucketsDir, { recursive: true });
      fs.writeFileSync(path.join(data, '.demo-seeded'), 'not wanted here\n');
    });

    it('sends every file written right after the watching line', async () => {
      write('demo/first.csv', 'a\n1\n');
      dev = new Dev(dir, local());
      await dev.waitFor(/^watching /);
      for (let i = 0; i < 20; i++) write(`burst/new/f${i}.csv`, `a\n${i}\n`);
      for (let i = 0; i < 10; i++) write(`demo/f${i}.csv`, `a\n${i}\n`);
      await dev.waitFor(/^start-up scan: /);
      const loaded = async (uri: string) => dev?.waitFor(new RegExp(`^loaded\\s+${uri} `), 30_000);
      for (let i = 0; i < 20; i++) await loaded(`gs://burst/new/f${i}\\.csv`);
      for (let i = 0; i < 10; i++) await loaded(`gs://demo/f${i}\\.csv`);
      await loaded('gs://demo/first\\.csv');
      expect(dev.lines.filter((l) => /^loaded/.test(l))).to.have.length(31);
    });

    it('loads a file written slowly once, whole, even when the writer pauses mid-line', async () => {
      dev = new Dev(dir, local());
      await dev.waitFor(/^watching /);
      fs.mkdirSync(path.join(bucketsDir, 'demo'));
      await bash(
        bucketsDir,
        `(printf 'id,v\\n1,a\\n'; sleep 1; printf '2,b\\n100,12'; sleep 1; printf '345\\n') > demo/slow2.csv`,
      );
      const line = await dev.waitFor(/^loaded\s+gs:\/\/demo\/slow2\.csv /);
      expect(line).to.match(/\(3 rows\)$/);
      await dev.stop();
      expect(await query('SELECT id, v FROM ingest.slow2 ORDER BY id')).to.deep.equal([
        { id: '1', v: 'a' },
        { id: '2', v: 'b' },
        { id: '100', v: '12345' },
      ]);
      expect(outcomes(dev, 'gs://demo/slow2.csv')).to.deep.equal([line]);
    });

    it('loads a file renamed into place', async () => {
      dev = new Dev(dir, local());
      await dev.waitFor(/^watching /);
      const staged = write('demo/.staged.csv', 'a,b\n1,2\n3,4\n5,6\n');
      fs.renameSync(staged, path.join(bucketsDir, 'demo', 'renamed.csv'));
      const line = await dev.waitFor(/^loaded\s+gs:\/\/demo\/renamed\.csv /);
      expect(line).to.match(/\(3 rows\)$/);
      await dev.stop();
      expect(outcomes(dev, 'gs://demo/renamed.csv')).to.deep.equal([line]);
    });

    it('redelivers an event answered 503 until the object loads', async () => {
      write('demo/first.csv', 'a\n1\n');
      dev = new Dev(dir, local());
      await dev.waitFor(/^start-up scan: /);
      await new Promise((r) => setTimeout(r, 500)); // the receiver lets go of the file when idle
      const holder = await holdWarehouse(path.join(data, 'warehouse.duckdb'));
      try {
        write('demo/held.csv', 'a\n1\n2\n');
        await dev.waitFor(
          /^retry\s+gs:\/\/demo\/held\.csv#\d+ in 1 s \(attempt 2 of 8\): HTTP 503: /,
          30_000,
        );
      } finally {
        await holder.release();
      }
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/held\.csv .*\(2 rows\)$/, 60_000);
    });

    it('on stop, names what will be sent again on the next start, and sends it then', async () => {
      dev = new Dev(dir, { ...local(), INGEST_SHUTDOWN_GRACE_SECONDS: '1' });
      await dev.waitFor(/^start-up scan: /);
      const holder = await holdWarehouse(path.join(data, 'warehouse.duckdb'));
      try {
        write('demo/a.csv', 'a\n1\n');
        write('demo/b.csv', 'a\n1\n');
        await dev.waitFor(/^retry\s+gs:\/\/demo\/a\.csv#\d+ in 1 s/, 30_000);
        await dev.waitFor(/^retry\s+gs:\/\/demo\/b\.csv#\d+ in 1 s/, 30_000);
        await new Promise((r) => setTimeout(r, 1500)); // the retries are in flight
        await dev.stop();
      } finally {
        await holder.release();
      }
      expect(dev.lines).to.include(
        'stopped: 2 objects were not loaded and will be sent again on the next start: gs://demo/a.csv, gs://demo/b.csv',
      );
      expect(dev.lines.join('\n')).not.to.match(/fetch failed|HTTP 500|no answer/);

      dev = new Dev(dir, local());
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/a\.csv /);
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/b\.csv /);
    });

    it('on restart sends nothing the ledger settled and quarantines nothing again', async () => {
      write('demo/good.csv', 'a\n1\n');
      write('demo/bad.csv', 'a,b\n1,2,3\n');
      write('demo/notes.txt', 'not a CSV\n');
      // Rejected before any job is built: over the size limit.
      write('demo/big.csv', `a\n${'1\n'.repeat(100)}`);
      const limited = () => ({ ...local(), INGEST_MAX_OBJECT_BYTES: '100' });
      dev = new Dev(dir, limited());
      await dev.waitFor(
        /^start-up scan: 0 already loaded or rejected \(not sent again\), 3 sent, 1 skipped$/,
      );
      expect(dev.lines.filter((l) => /gs:\/\//.test(l))).to.have.length(3);
      expect(dev.lines.join('\n')).to.match(/^rejected\s+gs:\/\/demo\/bad\.csv/m);
      expect(dev.lines.join('\n')).to.match(
        /^rejected\s+gs:\/\/demo\/big\.csv : object is 202 bytes, over the limit of 100/m,
      );
      await dev.stop();
      const quarantined = path.join(bucketsDir, 'demo', '_quarantine');
      const before = fs.readdirSync(quarantined, { recursive: true }).map((f) => {
        const file = path.join(quarantined, String(f));
        return `${String(f)} ${fs.statSync(file).mtimeMs}`;
      });

      dev = new Dev(dir, limited());
      await dev.waitFor(
        /^start-up scan: 3 already loaded or rejected \(not sent again\), 0 sent, 1 skipped$/,
      );
      await dev.stop();
      expect(dev.lines.filter((l) => /gs:\/\//.test(l))).to.deep.equal([]);
      const after = fs.readdirSync(quarantined, { recursive: true }).map((f) => {
        const file = path.join(quarantined, String(f));
        return `${String(f)} ${fs.statSync(file).mtimeMs}`;
      });
      expect(after).to.deep.equal(before);
      expect(after.filter((f) => f.startsWith('big.csv '))).to.have.length(1);
      expect(await query('SELECT count(*)::INT AS n FROM _ingest.rejections')).to.deep.equal([
        { n: 2 },
      ]);
      expect(await query('SELECT count(*)::INT AS n FROM _ingest.loads')).to.deep.equal([{ n: 1 }]);
    });

    it('warns once about a folder that is not a valid bucket name and sends none of its files', async () => {
      write('t1/a.csv', 'a\n1\n');
      write('t1/b.csv', 'a\n1\n');
      dev = new Dev(dir, local());
      await dev.waitFor(/^start-up scan: /);
      write('t1/c.csv', 'a\n1\n');
      write('demo/after.csv', 'a\n1\n');
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/after\.csv /);
      const warnings = dev.lines.filter((l) => l.includes('"t1" is not a valid bucket name'));
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.include('3-63 characters of lower-case letters');
      expect(dev.lines.join('\n')).not.to.include('gs://t1/');
    });

    it('warns once, and sends nothing, for a name with a line break, a file dated 1970 or a symlink', async () => {
      const placed = (relative: string, mtime: number) => {
        const staged = path.join(data, `staged-${path.basename(relative).replace(/\s/g, '_')}`);
        fs.writeFileSync(staged, 'a\n1\n');
        fs.utimesSync(staged, new Date(mtime * 1000), new Date(mtime * 1000)); // a negative number means now
        fs.renameSync(staged, path.join(bucketsDir, relative)); // complete, with that mtime
      };
      fs.writeFileSync(path.join(data, 'outside.csv'), 'a\n1\n');
      fs.mkdirSync(path.join(bucketsDir, 'demo'));
      const link = (relative: string) =>
        fs.symlinkSync(path.join(data, 'outside.csv'), path.join(bucketsDir, relative));
      write('demo/early\nbreak.csv', 'a\n1\n');
      placed('demo/epoch.csv', 0);
      link('demo/early-link.csv');
      dev = new Dev(dir, local());
      await dev.waitFor(/^start-up scan: /);
      write('demo/late\rbreak.csv', 'a\n1\n');
      placed('demo/before-1970.csv', -86_400);
      link('demo/late-link.csv');
      write('demo/after.csv', 'a\n1\n');
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/after\.csv /);
      const warned = (pattern: RegExp) => dev?.waitFor(pattern, 10_000);
      await warned(
        /^ignoring ".*early\\nbreak\.csv": its name contains a line break, which Cloud Storage never allows: rename the file$/,
      );
      await warned(/^ignoring ".*late\\rbreak\.csv": its name contains a line break/);
      await warned(
        /^ignoring .*epoch\.csv: its modification time \(1970-01-01T00:00:00\.000Z\) is not after 1970, .* \(touch it, or copy it again\) to load it$/,
      );
      await warned(
        /^ignoring .*before-1970\.csv: its modification time \(1969-12-31T00:00:00\.000Z\)/,
      );
      await warned(
        /^ignoring .*early-link\.csv: a symbolic link, which the local store never follows/,
      );
      await warned(/^ignoring .*late-link\.csv: a symbolic link/);
      // touched, the old file loads; each warning was given once, and nothing was retried
      const now = Date.now() / 1000;
      fs.utimesSync(path.join(bucketsDir, 'demo', 'epoch.csv'), now, now);
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/epoch\.csv /);
      const ignoring = dev.lines.filter((l) => l.startsWith('ignoring '));
      expect(ignoring, dev.lines.join('\n')).to.have.length(6);
      expect(dev.lines.filter((l) => /^(retry|gave up|HTTP)/.test(l))).to.deep.equal([]);
    });

    it('refuses a second dev on the same LOCAL_DATA_DIR, and starts once the first has stopped', async () => {
      dev = new Dev(dir, local());
      await dev.waitFor(/^watching /);
      const second = { ...local(), PORT: String(await freePort()) };
      const refused = spawnSync(process.execPath, [CLI, 'dev'], {
        cwd: dir,
        env: { ...process.env, ...second },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(refused.status).to.equal(1);
      expect(refused.stderr.trim().split('\n')).to.deep.equal([
        `gcs-bq-ingest: another gcs-bq-ingest dev (pid ${dev.process.pid}, http://localhost:${port}/) already uses ${data}: use that one, stop it, or give this one its own LOCAL_DATA_DIR`,
      ]);
      await dev.stop();
      dev = new Dev(dir, second);
      await dev.waitFor(/^watching /);
    });

    it('stops at once, naming the port, when the port is taken, and sends nothing there', async () => {
      write('demo/first.csv', 'a\n1\n');
      const received: string[] = [];
      const other = http.createServer((req, res) => {
        received.push(`${req.method} ${req.url}`);
        res.setHeader('content-type', 'application/json');
        res.end('{"status":"ok"}');
      });
      const busy = await freePort();
      await new Promise<void>((resolve) => other.listen(busy, resolve));
      try {
        const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [CLI, 'dev'], {
            cwd: dir,
            env: { ...process.env, ...local(), PORT: String(busy) },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
          child.once('exit', (code) => resolve({ code, stderr }));
        });
        expect(result.code).to.equal(1);
        expect(result.stderr.trim().split('\n')).to.deep.equal([
          `gcs-bq-ingest: port ${busy} is already in use (another gcs-bq-ingest dev?): stop that process, or choose another port with --port or PORT`,
        ]);
        expect(received.filter((r) => r.startsWith('POST'))).to.deep.equal([]);
      } finally {
        await new Promise((resolve) => other.close(resolve));
      }
    });

    for (const [how, args, extra] of [
      ['PORT=abc', [], { PORT: 'abc' }],
      ['--port abc', ['--port', 'abc'], {}],
    ] as const) {
      it(`stops at once with one line on ${how}`, () => {
        const result = spawnSync(process.execPath, [CLI, 'dev', ...args], {
          cwd: dir,
          env: { ...process.env, ...local(), ...extra },
          encoding: 'utf8',
          timeout: 30_000,
        });
        expect(result.status).to.equal(1);
        const lines = result.stderr.trim().split('\n');
        expect(lines).to.have.length(1);
        expect(lines[0])
          .to.match(/--port/)
          .and.match(/abc/)
          .and.match(/1 to 65535/);
        if (how === 'PORT=abc') expect(lines[0]).to.match(/env 'PORT'/);
      });
    }

    it('emit without a receiver names the URL and how to start one', async () => {
      const file = write('demo/x.csv', 'a\n1\n');
      const url = `http://127.0.0.1:${await freePort()}/`;
      const result = emit(file, '--url', url);
      expect(result.status).to.equal(1);
      expect(result.stderr.trim().split('\n')).to.have.length(1);
      expect(result.stderr)
        .to.include(`no answer from ${url} (ECONNREFUSED)`)
        .and.include('npm start');
    });

    it('emit --force loads an object again, once', async () => {
      const file = write('demo/again.csv', 'a\n1\n2\n');
      dev = new Dev(dir, local());
      await dev.waitFor(/^loaded\s+gs:\/\/demo\/again\.csv .*\(2 rows\)$/);
      const url = `http://127.0.0.1:${port}/`;
      expect(emit(file, '--url', url).stdout).to.match(/^duplicate\s+gs:\/\/demo\/again\.csv/);
      const forced = emit(file, '--url', url, '--force');
      expect(forced.status, forced.stderr).to.equal(0);
      expect(forced.stdout).to.match(
        /^loaded\s+gs:\/\/demo\/again\.csv .*\(2 rows, appended again: forced\)$/m,
      );
      await dev.stop();
      expect(await query('SELECT count(*)::INT AS n FROM ingest.again')).to.deep.equal([{ n: 4 }]);
    });
  });
});
