import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import { createLocalStore } from '../../src/stores/local';
import type { StoredObject } from '../../src/stores/store';
import { queryDuckDb } from '../helpers/duckdb';
import { startReceiver, type RunningServer } from '../helpers/server';

const EVENTS = 2_000;
const CONCURRENCY = 50;
// Under 50 requests at a time the JS heap goes on growing for the first several hundred events
// (RSS measured at 200, 500, 1,000 and 1,500 events: 152, 173, 180, 182 MiB): memory is compared
// from there on, so that what grows after it is what the events leave behind.
const WARM_UP_EVENTS = 500;

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

describe('soak: 2,000 events at 50 concurrent requests on the local backend', function () {
  this.timeout(300_000);
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-soak-'));
    fs.writeFileSync(
      path.join(dir, 'ingest.yaml'),
      'routes:\n  - match: "soak/*.csv"\n    table: soak\n  - match: "**/*.csv"\n',
    );
    server = await startReceiver(
      { LOCAL_DATA_DIR: path.join(dir, 'data'), INGEST_CONFIG: path.join(dir, 'ingest.yaml') },
      dir,
    );
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accounts for every response, writes exact row counts and holds its memory', async () => {
    const store = createLocalStore(path.join(dir, 'data'));
    const write = async (name: string, content: string): Promise<StoredObject> => {
      const file = path.join(dir, 'data', 'buckets', 'soak-bucket', name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      return (await store.stat('soak-bucket', name)) as StoredObject;
    };
    // 400 new objects (each sent 3 times: 1 load + 2 duplicates), 400 skipped, 400 rejected.
    const events: { object: StoredObject; expected: string }[] = [];
    let expectedRows = 0;
    for (let i = 0; i < 400; i++) {
      const rows = 1 + (i % 5);
      expectedRows += rows;
      const object = await write(
        `soak/${i}.csv`,
        `id,value\n${Array.from({ length: rows }, (_, r) => `${i},${r}`).join('\n')}\n`,
      );
      events.push(
        { object, expected: 'new' },
        { object, expected: 'new' },
        { object, expected: 'new' },
      );
      events.push({ object: await write(`skip/${i}.txt`, 'not a csv'), expected: 'skipped' });
      events.push({
        object: await write(`bad/${i}.csv`, 'id,value\n1,\u0000\n'),
        expected: 'rejected',
      });
    }
    expect(events).to.have.length(EVENTS);
    // A fixed shuffle, so that duplicates race their first load.
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    events.sort(() => random() - 0.5);

    const answers: { expected: string; status: number; outcome: string; uri: string }[] = [];
    let next = 0;
    let warmRss = 0;
    const worker = async () => {
      while (next < events.length) {
        const { object, expected } = events[next++] as (typeof events)[0];
        const answer = await sendEvent(server.url, finalizedEvent(object));
        const body = answer.body as { outcome: string };
        answers.push({
          expected,
          status: answer.status,
          outcome: body.outcome,
          uri: `${object.bucket}/${object.name}`,
        });
        if (answers.length === WARM_UP_EVENTS) warmRss = rssBytes(server.process.pid as number);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const endRss = rssBytes(server.process.pid as number);
    console.log(
      `      ${EVENTS} events in ${Date.now() - started} ms; RSS after warm-up ${(warmRss / 2 ** 20).toFixed(1)} MiB, at the end ${(endRss / 2 ** 20).toFixed(1)} MiB`,
    );

    expect(answers).to.have.length(EVENTS);
    expect(answers.filter((a) => a.status !== 200)).to.deep.equal([]);
    const count = (outcome: string) => answers.filter((a) => a.outcome === outcome).length;
    expect({
      loaded: count('loaded'),
      duplicate: count('duplicate'),
      skipped: count('skipped'),
      rejected: count('rejected'),
    }).to.deep.equal({
      loaded: 400,
      duplicate: 800,
      skipped: 400,
      rejected: 400,
    });
    for (const a of answers.filter((x) => x.expected !== 'new'))
      expect(a.outcome, a.uri).to.equal(a.expected);
    const loadedUris = new Set(answers.filter((a) => a.outcome === 'loaded').map((a) => a.uri));
    expect(loadedUris.size).to.equal(400);

    const [table] = await queryDuckDb(
      path.join(dir, 'data', 'warehouse.duckdb'),
      'SELECT count(*)::INTEGER AS n FROM ingest.soak',
    );
    expect(table?.n).to.equal(expectedRows);
    const [ledger] = await queryDuckDb(
      path.join(dir, 'data', 'warehouse.duckdb'),
      `SELECT (SELECT count(DISTINCT u)::INTEGER FROM (SELECT unnest(uris) AS u FROM _ingest.loads)) AS objects,
              (SELECT sum(len(uris))::INTEGER FROM _ingest.loads) AS loads,
              (SELECT sum(rows)::INTEGER FROM _ingest.loads) AS rows`,
    );
    // Coalesced jobs: each of the 400 objects in exactly one job, and the jobs' rows add up.
    expect(ledger).to.deep.equal({ objects: 400, loads: 400, rows: expectedRows });
    expect(endRss / warmRss).to.be.at.most(1.2);
  });
});
