import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../src/cli/events';
import { writeCsv } from './csv';
import {
  MB,
  expectOutcome,
  putLocal,
  result,
  round,
  seconds,
  startIngest,
  statLocal,
  type BenchOptions,
  type BenchReport,
} from './lib';

/**
 * 3. Local ingest throughput: a generated CSV (100 MB; --quick: 10 MB) through the whole path, event
 * to `loaded`, against DuckDB alone running CREATE TABLE … AS SELECT * FROM read_csv(…) on the same
 * file. 5 rounds (--quick: 3) that take turns at going first; each loads the file
 * under a new name (a hard link), so into a new table both ways.
 */
export async function localIngest(options: BenchOptions): Promise<BenchReport> {
  const bytes = (options.quick ? 10 : 100) * MB;
  const repetitions = options.quick ? 3 : 5;
  const root = path.join(options.work, 'data');
  const bucket = path.join(root, 'buckets', 'bench');
  fs.mkdirSync(bucket, { recursive: true });
  const source = path.join(bucket, 'orders.csv');
  const rows = writeCsv(source, bytes);
  const size = fs.statSync(source).size;
  options.log(`  generated ${round(size / MB)} MB, ${rows} rows`);

  const baseline = await DuckDBInstance.create(path.join(options.work, 'baseline.duckdb'));
  const connection = await baseline.connect();
  const service = await startIngest(options, { LOCAL_DATA_DIR: root });
  const serviceRates: number[] = [];
  const duckdbRates: number[] = [];
  try {
    // The first event builds the backend (loads DuckDB, creates the warehouse file): not measured.
    const warm = await putLocal(root, 'bench', 'warm-up.csv', 'a,b\n1,x\n');
    expectOutcome(await sendEvent(service.url, finalizedEvent(warm)), 'loaded', 'ingest warm-up');
    const viaService = async (i: number) => {
      const name = `orders_${i}.csv`;
      fs.linkSync(source, path.join(bucket, name));
      const event = finalizedEvent(await statLocal(root, 'bench', name));
      const t0 = performance.now();
      const answer = await sendEvent(service.url, event);
      const elapsed = seconds(t0);
      expectOutcome(answer, 'loaded', `ingest ${name}`);
      const loaded = (answer.body as { objects: { rows?: number }[] }).objects[0]?.rows;
      if (loaded !== rows) throw new Error(`ingest ${name}: ${loaded} rows loaded, not ${rows}`);
      return elapsed;
    };
    for (let i = 1; i <= repetitions; i++) {
      // Taking turns at going first, so that neither always meets the other's disk writes.
      const first = i % 2 === 1 ? 'duckdb' : 'service';
      let duckdbSeconds = first === 'duckdb' ? await duckdbAlone(connection, source, i, rows) : 0;
      const serviceSeconds = await viaService(i);
      if (first === 'service') duckdbSeconds = await duckdbAlone(connection, source, i, rows);
      serviceRates.push(size / MB / serviceSeconds);
      duckdbRates.push(size / MB / duckdbSeconds);
      options.log(
        `  ${i}: service ${round(size / MB / serviceSeconds)} MB/s, ` +
          `DuckDB alone ${round(size / MB / duckdbSeconds)} MB/s`,
      );
    }
  } finally {
    await service.stop();
    connection.closeSync();
    baseline.closeSync();
  }
  return {
    results: [result('local-ingest-100mb', 'MB/s', serviceRates, duckdbRates, '>= 0.9')],
    notes: [],
  };
}

/** Seconds DuckDB takes to load `file` into a new table; checks the row count. */
async function duckdbAlone(
  c: DuckDBConnection,
  file: string,
  repetition: number,
  rows: number,
): Promise<number> {
  const table = `orders_${repetition}`;
  const t0 = performance.now();
  await c.run(`CREATE TABLE ${table} AS SELECT * FROM read_csv('${file}')`);
  const elapsed = seconds(t0);
  const counted = (await c.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRowsJS()[0]?.[0];
  if (Number(counted) !== rows) throw new Error(`DuckDB alone: ${counted} rows, not ${rows}`);
  return elapsed;
}
