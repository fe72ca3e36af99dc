import { DuckDBInstance } from '@duckdb/node-api';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../src/cli/events';
import type { StoredObject } from '../src/stores/store';
import { writeCsv } from './csv';
import {
  expectOutcome,
  mapLimit,
  putLocal,
  result,
  round,
  seconds,
  startIngest,
  statLocal,
  type BenchOptions,
  type BenchReport,
} from './lib';

const CONCURRENCY = 16;
const FILE_BYTES = 10 * 1024;
// All parts append to one table, as a stream of small files into one table would.
const CONFIG = `
routes:
  - match: "small/*.csv"
    table: small
  - match: "**/*.csv"
`;

/**
 * 4. Many small files: 1,000 CSVs of about 10 KB (--quick: 100), sent as events 16 at a time, against
 * the same files loaded by DuckDB alone one by one (CREATE TABLE AS for the first, INSERT for the rest).
 */
export async function smallFiles(options: BenchOptions): Promise<BenchReport> {
  const count = options.quick ? 100 : 1000;
  const root = path.join(options.work, 'data');
  const dir = path.join(root, 'buckets', 'bench', 'small');
  fs.mkdirSync(dir, { recursive: true });
  const names = Array.from({ length: count }, (_, i) => `part-${String(i).padStart(4, '0')}.csv`);
  let rows = 0;
  for (const [i, name] of names.entries()) {
    rows += writeCsv(path.join(dir, name), FILE_BYTES, i + 1, rows + 1);
  }
  const objects: StoredObject[] = [];
  for (const name of names) objects.push(await statLocal(root, 'bench', `small/${name}`));

  // DuckDB alone, one file after the other.
  const instance = await DuckDBInstance.create(path.join(options.work, 'baseline.duckdb'));
  const connection = await instance.connect();
  let baselineSeconds: number;
  try {
    const t0 = performance.now();
    for (const [i, name] of names.entries()) {
      const file = path.join(dir, name);
      await connection.run(
        i === 0
          ? `CREATE TABLE small AS SELECT * FROM read_csv('${file}')`
          : `INSERT INTO small SELECT * FROM read_csv('${file}')`,
      );
    }
    baselineSeconds = seconds(t0);
    const counted = (await connection.runAndReadAll('SELECT count(*) FROM small')).getRowsJS();
    if (Number(counted[0]?.[0]) !== rows) throw new Error(`DuckDB alone: not ${rows} rows`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }

  const config = path.join(options.work, 'ingest.yaml');
  fs.writeFileSync(config, CONFIG);
  const service = await startIngest(options, {
    LOCAL_DATA_DIR: root,
    INGEST_CONFIG: config,
  });
  let serviceSeconds: number;
  try {
    const warm = await putLocal(root, 'bench', 'warm-up.csv', 'a,b\n1,x\n');
    expectOutcome(await sendEvent(service.url, finalizedEvent(warm)), 'loaded', 'small warm-up');
    const t0 = performance.now();
    const answers = await mapLimit(objects, CONCURRENCY, (object) =>
      sendEvent(service.url, finalizedEvent(object)),
    );
    serviceSeconds = seconds(t0);
    answers.forEach((answer, i) => expectOutcome(answer, 'loaded', `small file ${names[i]}`));
  } finally {
    await service.stop();
  }
  const serviceRate = count / serviceSeconds;
  const baselineRate = count / baselineSeconds;
  options.log(
    `  ${count} files: service ${round(serviceRate)} files/s, DuckDB alone ${round(baselineRate)} files/s`,
  );
  return {
    results: [result('small-files-1000', 'files/s', serviceRate, baselineRate, '>= 1.0')],
    notes: [],
  };
}
