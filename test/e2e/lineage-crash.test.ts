import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import { createLocalStore } from '../../src/stores/local';
import type { StoredObject } from '../../src/stores/store';
import { queryDuckDb } from '../helpers/duckdb';
import { startReceiver, type RunningServer } from '../helpers/server';

const BUCKET = 'big';
const CONFIG = `
routes:
  - match: "lineage/*.csv"
    dataset: ingest
    table: items
    lineage: true
`;
// Generation 2 is large enough that its load takes about a second here; generation 1 is small.
const SMALL_BYTES = 2 * 1024 * 1024;
const LARGE_BYTES = 60 * 1024 * 1024;
// Where in generation 2's load the receiver is killed: at fractions of how long a whole load takes,
// and once DuckDB writes the new rows into its file (the old ones are deleted by then, uncommitted).
const KILL_AT: (number | 'writing')[] = [0.2, 0.5, 0.8, 'writing'];
const WRITING_BYTES = 4 * 1024 * 1024;

const sizeOf = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size : 0);

/**
 * Writes `bytes` of rows labelled `label` to `file` through a temporary name, so that the object is
 * replaced whole (a new generation) at once; returns the rows written.
 */
function writeLabelled(file: string, bytes: number, label: string): number {
  const temporary = `${file}.writing`;
  const out = fs.openSync(temporary, 'w');
  fs.writeSync(out, 'id,gen,name,amount,note\n');
  let written = 0;
  let rows = 0;
  while (written < bytes) {
    let chunk = '';
    for (let i = 0; i < 10_000; i++, rows++) {
      chunk += `${rows},${label},name ${rows},${(rows * 1.5).toFixed(2)},"quoted, ""text"" ${rows}"\n`;
    }
    written += fs.writeSync(out, chunk);
  }
  fs.closeSync(out);
  fs.renameSync(temporary, file);
  return rows;
}

describe('lineage on the local backend: kill -9 while a new generation replaces the old one', function () {
  this.timeout(600_000);
  let dir: string;
  let server: RunningServer | undefined;
  const data = () => path.join(dir, 'data');
  const warehouse = () => path.join(data(), 'warehouse.duckdb');
  const start = async () => {
    server = await startReceiver(
      { LOCAL_DATA_DIR: data(), INGEST_CONFIG: path.join(dir, 'ingest.yaml') },
      dir,
    );
    return server;
  };
  async function put(name: string, bytes: number, label: string) {
    const file = path.join(data(), 'buckets', BUCKET, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const rows = writeLabelled(file, bytes, label);
    const object = await createLocalStore(data()).stat(BUCKET, name);
    if (!object) throw new Error(`${file} was not written`);
    return { object, rows };
  }
  async function deliver(object: StoredObject) {
    const answer = await sendEvent((server as RunningServer).url, finalizedEvent(object));
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    return (answer.body as { outcome: string }).outcome;
  }
  /** Per object URI: its rows, distinct ids, labels and generations in the table. */
  async function table() {
    const rows = await queryDuckDb(
      warehouse(),
      `SELECT _source_uri AS uri, count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS ids,
              string_agg(DISTINCT gen, ',') AS labels,
              string_agg(DISTINCT _source_generation::VARCHAR, ',') AS generations,
              count(_loaded_at)::INTEGER AS stamped
       FROM ingest.items GROUP BY ALL ORDER BY uri`,
    );
    return Object.fromEntries(rows.map(({ uri, ...rest }) => [String(uri), rest]));
  }

  /** What the table holds of an object written with `label`: each of its rows once, stamped. */
  const holding = ({ object, rows }: { object: StoredObject; rows: number }, label: string) => ({
    n: rows,
    ids: rows,
    labels: label,
    generations: object.generation,
    stamped: rows,
  });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-lineage-crash-'));
    fs.writeFileSync(path.join(dir, 'ingest.yaml'), CONFIG);
  });
  afterEach(async () => {
    await server?.stop('SIGKILL');
    server = undefined;
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every round ends with exactly the rows of generation 2, once, and none of generation 1', async () => {
    await start();
    // How long a whole load of generation 2's size takes, event to answer; the first event builds
    // the backend (loads DuckDB, creates the file) and is not timed.
    const warm = await put('lineage/warm-up.csv', 1, 'w');
    expect(await deliver(warm.object)).to.equal('loaded');
    // The shorter of two loads: a load slowed by other work on the machine would put the kills late.
    const calibrations = [];
    let loadMs = Infinity;
    for (const i of [1, 2]) {
      const calibration = await put(`lineage/calibration-${i}.csv`, LARGE_BYTES, 'c');
      const t0 = performance.now();
      expect(await deliver(calibration.object)).to.equal('loaded');
      loadMs = Math.min(loadMs, performance.now() - t0);
      calibrations.push(calibration);
    }
    await server?.stop();

    const expected: Record<string, Record<string, unknown>> = {
      'gs://big/lineage/warm-up.csv': holding(warm, 'w'),
      ...Object.fromEntries(
        calibrations.map((c, i) => [`gs://big/lineage/calibration-${i + 1}.csv`, holding(c, 'c')]),
      ),
    };
    const killed: string[] = [];
    for (const [round, fraction] of KILL_AT.entries()) {
      const name = `lineage/round-${round}.csv`;
      const uri = `gs://${BUCKET}/${name}`;
      await start();
      const first = await put(name, SMALL_BYTES, 'g1');
      expect(await deliver(first.object)).to.equal('loaded');
      const second = await put(name, LARGE_BYTES, 'g2');
      expect(second.object.generation).to.not.equal(first.object.generation);
      let answered: string | undefined;
      void sendEvent((server as RunningServer).url, finalizedEvent(second.object)).then(
        (answer) => (answered = String((answer.body as { outcome?: string }).outcome)),
        () => undefined,
      );
      const sent = performance.now();
      if (fraction === 'writing') {
        const written = () => sizeOf(warehouse()) + sizeOf(`${warehouse()}.wal`);
        const before = written();
        while (answered === undefined && written() < before + WRITING_BYTES)
          await new Promise((resolve) => setTimeout(resolve, 5));
        expect(answered, 'the load finished before it wrote: make the file larger').to.equal(
          undefined,
        );
      } else await new Promise((resolve) => setTimeout(resolve, Math.round(loadMs * fraction)));
      await server?.stop('SIGKILL');
      const at = Math.round(performance.now() - sent);
      killed.push(`round ${round} at ${at} ms: ${answered ?? 'no answer'}`);

      // The redelivery after a restart: loaded, or a duplicate where the load had committed.
      await start();
      const again = await deliver(second.object);
      if (answered === 'loaded') expect(again, `round ${round}`).to.equal('duplicate');
      else expect(['loaded', 'duplicate'], `round ${round}`).to.include(again);
      // An older generation's late event changes nothing.
      expect(await deliver(first.object)).to.not.equal('loaded');
      await server?.stop();

      expected[uri] = holding(second, 'g2');
      expect(await table(), `round ${round} (${killed.join('; ')})`).to.deep.equal(expected);
      const loads = await queryDuckDb(
        warehouse(),
        `SELECT rows::INTEGER AS rows, replaced_rows::INTEGER[] AS replaced FROM _ingest.loads
         WHERE list_contains(uris, '${uri}') ORDER BY loaded_at`,
      );
      expect(loads, `round ${round}`).to.deep.equal([
        { rows: first.rows, replaced: [0] },
        { rows: second.rows, replaced: [first.rows] },
      ]);
    }
    // Which rounds the kill landed in before the load's answer (printed for the record).
    console.log(`      load of ${Math.round(loadMs)} ms; ${killed.join('; ')}`);
  });
});
