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

  it('on SIGTERM finishes the load in flight within the grace, refuses new events with 503, and closes DuckDB cleanly', async () => {
    const { object, rows } = await bigObject('slow.csv', 100 * 1024 * 1024);
    server = await startReceiver({ ...env(), INGEST_SHUTDOWN_GRACE_SECONDS: '120' });
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

  it('when the grace runs out, answers every request 200 or 503, exits, and a redelivery loads each 503 once', async () => {
    // More to load than the grace allows: the first file alone takes about half a second here.
    const graceSeconds = 1;
    const files = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => bigObject(`stop-${i}.csv`, 50 * 1024 * 1024)),
    );
    server = await startReceiver({
      ...env(),
      INGEST_SHUTDOWN_GRACE_SECONDS: String(graceSeconds),
    });
    const answers = files.map(({ object }) =>
      sendEvent(server!.url, finalizedEvent(object)).then(
        (answer) => answer,
        (error: unknown) => ({ status: 0, body: String((error as Error).cause ?? error) }),
      ),
    );
    while (fileSize(warehouse()) < 2 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      server?.process.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const signalled = Date.now();
    server.process.kill('SIGTERM');
    const settled: EventAnswer[] = await Promise.all(answers);
    const { code, signal } = await exited;
    const seconds = (Date.now() - signalled) / 1000;

    // A load the warehouse's abort did not stop is ended by the process killing itself (its event was
    // answered 503 and must not commit); when abort stops every load, the process exits normally.
    const outlived = settled.some((a) =>
      /before this event was handled/.test(JSON.stringify(a.body)),
    );
    if (outlived) expect(signal).to.equal('SIGKILL');
    else expect(code).to.equal(0);
    // A hang guard, not a speed test: the grace plus the bounded steps after it.
    expect(seconds, 'seconds from SIGTERM to exit').to.be.below(graceSeconds + 8);
    const statuses = settled.map((a) => a.status);
    expect(
      statuses.every((s) => s === 200 || s === 503),
      JSON.stringify(settled),
    ).to.equal(true);
    expect(
      statuses,
      'the grace ran out before every load finished: make the files larger',
    ).to.include(503);
    for (const answer of settled) {
      if (answer.status === 200) expect(answer.body).to.deep.include({ outcome: 'loaded' });
      else expect(answer.body).to.deep.include({ retryable: true });
    }

    const countIn = async (table: string) => {
      const found = await queryDuckDb(
        warehouse(),
        `SELECT count(*)::INTEGER AS n FROM information_schema.tables WHERE table_schema = 'ingest' AND table_name = '${table}'`,
      );
      if (found[0]?.n === 0) return 0;
      const [row] = await queryDuckDb(
        warehouse(),
        `SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS ids FROM ingest.${table}`,
      );
      expect(row?.n, `${table}: every row once`).to.equal(row?.ids);
      return row?.n;
    };
    for (const [i, { rows }] of files.entries()) {
      const expected = statuses[i] === 200 ? rows : 0;
      const why = `stop-${i}.csv answered ${statuses[i]}\n--- service output ---\n${server.output()}`;
      expect(await countIn(`stop_${i}`), why).to.equal(expected);
    }

    server = await startReceiver(env());
    for (const [i, { object }] of files.entries()) {
      const again = await sendEvent(server.url, finalizedEvent(object));
      const outcome = statuses[i] === 200 ? 'duplicate' : 'loaded';
      expect(again.body, `redelivery of stop-${i}.csv`).to.deep.include({ outcome });
    }
    await server.stop();
    for (const [i, { rows }] of files.entries()) expect(await countIn(`stop_${i}`)).to.equal(rows);
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
