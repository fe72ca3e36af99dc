import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { holdLock } from '../helpers/duckdb';
import { runCli } from '../helpers/cli';

/** `/usr/bin/node (PID 1234)` from the CLI's message. */
function holderOf(line: string | undefined): string {
  return /is locked by (.+ \(PID \d+\)), which/.exec(line ?? '')?.[1] ?? '(none)';
}

describe('gcs-bq-ingest tables (local backend)', function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;

  const run = (args: string[]) =>
    runCli(['tables', ...args], dir, { LOCAL_DATA_DIR: path.join(dir, 'data'), INGEST_CONFIG: '' });

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-tables-'));
    file = path.join(dir, 'data', 'warehouse.duckdb');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    await connection.run('CREATE SCHEMA ingest; CREATE TABLE ingest.states AS SELECT 1 AS a');
    connection.closeSync();
    instance.closeSync();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists the tables', async () => {
    const result = await run([]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.equal('table          rows\ningest.states  1\n');
  });

  it('waits for the process holding the file to let go', async () => {
    const holder = await holdLock(file, 500);
    const result = await run(['--wait', '30']);
    await holder.exited;
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.include('ingest.states  1');
  });

  it('gives up after --wait seconds in one line naming the process that holds the file', async () => {
    const holder = await holdLock(file, 60_000);
    try {
      const result = await run(['--wait', '0.2']);
      expect(result.status).to.equal(1);
      expect(result.stdout).to.equal('');
      const lines = result.stderr.split('\n');
      expect(lines, result.stderr).to.have.length(2);
      expect(lines[0]).to.equal(
        `gcs-bq-ingest: the local warehouse ${file} is locked by ${holderOf(lines[0])}, ` +
          'which did not let go for 0.2 s; try again, or wait longer with --wait <seconds>',
      );
      expect(holderOf(lines[0])).to.match(new RegExp(`node \\(PID ${holder.pid}\\)$`));
    } finally {
      await holder.release();
    }
  });

  it('refuses a --wait that is not a number of seconds', async () => {
    const result = await run(['--wait', 'soon']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/--wait.*a number of seconds/);
  });
});
