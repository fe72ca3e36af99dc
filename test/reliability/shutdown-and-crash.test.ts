import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalizedEvent, sendEvent, type EventAnswer } from '../../src/cli/events';
import { createLocalStore } from '../../src/stores/local';
import type { StoredObject } from '../../src/stores/store';
import { writeLargeCsv } from '../helpers/csv';
import { queryDuckDb } from '../helpers/duckdb';
import { startReceiver, type RunningServer } from '../helpers/server';

const fileSize = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size : 0);

describe('shutdown and crash safety on the local backend', function () {
  this.timeout(180_000);
  let dir: string;
  let server: RunningServer | undefined;
  const env = () => ({ LOCAL_DATA_DIR: path.join(dir, 'data'), INGEST_CONFIG: '' });
  const warehouse = () => path.join(dir, 'data', 'warehouse.duckdb');

  async function bigObject(
    name: string,
    bytes: number,
  ): Promise<{ object: StoredObject; rows: number }> {
    const file = path.join(dir, 'data', 'buckets', 'big', name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const rows = await writeLargeCsv(file, bytes);
    const object = await createLocalStore(path.join(dir, 'data')).stat('big', name);
    if (!object) throw new Error('not written');
    return { object, rows };
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-reliability-'));
  });
  afterEach(async () => {
    await server?.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('on SIGTERM finishes the load in flight, refuses new events with 503, and closes DuckDB cleanly', async () => {
    const { object, rows } = await bigObject('slow.csv', 100 * 1024 * 1024);
    server = await startReceiver(env());
    let answered = false;
    const inFlight = sendEvent(server.url, finalizedEvent(object)).finally(() => (answered = true));
    while (!answered && fileSize(warehouse()) < 2 * 1024 * 1024)
      await new Promise((r) => setTimeout(r, 5));
    expect(answered, 'the load finished before SIGTERM: make the file larger').to.equal(false);
    server.process.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const refused = await sendEvent(server.url, finalizedEvent(object));
    expect(refused.status).to.equal(503);
    expect(refused.body).to.deep.include({ retryable: true });
    expect((await fetch(`${server.url}health`)).status).to.equal(503);

    const answer: EventAnswer = await inFlight;
    expect(answer.status).to.equal(200);
    expect(answer.body).to.deep.include({ outcome: 'loaded' });
    const code = await new Promise<number | null>((resolve) =>
      server?.process.once('exit', resolve),
    );
    expect(code).to.equal(0);
    const [count] = await queryDuckDb(
      warehouse(),
      'SELECT count(*)::INTEGER AS n FROM ingest.slow',
    );
    expect(count?.n).to.equal(rows);
  });

  it('after kill -9 in the middle of a 100 MB load, the redelivery loads exactly one copy', async () => {
    const { object, rows } = await bigObject('crash.csv', 100 * 1024 * 1024);
    server = await startReceiver(env());
    let answered = false;
    void sendEvent(server.url, finalizedEvent(object)).then(
      () => (answered = true),
      () => undefined,
    );
    // Kill once DuckDB has begun writing the rows of the uncommitted load into its file.
    const deadline = Date.now() + 30_000;
    while (!answered && Date.now() < deadline && fileSize(warehouse()) < 2 * 1024 * 1024) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(answered, 'the load finished before the kill: make the file larger').to.equal(false);
    await server.stop('SIGKILL');

    server = await startReceiver(env());
    const redelivered = await sendEvent(server.url, finalizedEvent(object));
    expect(redelivered.body).to.deep.include({ outcome: 'loaded' });
    const again = await sendEvent(server.url, finalizedEvent(object));
    expect(again.body).to.deep.include({ outcome: 'duplicate' });
    await server.stop();

    const [table] = await queryDuckDb(
      warehouse(),
      'SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS ids FROM ingest.crash',
    );
    expect(table).to.deep.equal({ n: rows, ids: rows });
    const ledger = await queryDuckDb(
      warehouse(),
      'SELECT rows::INTEGER AS rows FROM _ingest.loads',
    );
    expect(ledger).to.deep.equal([{ rows }]);
    const check = await queryDuckDb(warehouse(), 'PRAGMA database_size');
    expect(check).to.have.length(1);
  });
});
