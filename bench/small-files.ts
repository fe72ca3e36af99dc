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
 * Three rounds taking turns at going first; each round loads the files under new names (hard links),
 * appending to the same table both ways.
 */
export async function smallFiles(options: BenchOptions): Promise<BenchReport> {
  const count = options.quick ? 100 : 1000;
  const rounds = 3;
  const root = path.join(options.work, 'data');
  const dir = path.join(root, 'buckets', 'bench', 'small');
  const originals = path.join(options.work, 'files');
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(originals);
  const names = Array.from({ length: count }, (_, i) => `part-${String(i).padStart(4, '0')}.csv`);
  let rows = 0;
  for (const [i, name] of names.entries()) {
    rows += writeCsv(path.join(originals, name), FILE_BYTES, i + 1, rows + 1);
  }

  const config = path.join(options.work, 'ingest.yaml');
  fs.writeFileSync(config, CONFIG);
  const instance = await DuckDBInstance.create(path.join(options.work, 'baseline.duckdb'));
  const connection = await instance.connect();
  const service = await startIngest(options, { LOCAL_DATA_DIR: root, INGEST_CONFIG: config });
  const serviceRates: number[] = [];
  const baselineRates: number[] = [];
  try {
    const warm = await putLocal(root, 'bench', 'warm-up.csv', 'a,b\n1,x\n');
    expectOutcome(await sendEvent(service.url, finalizedEvent(warm)), 'loaded', 'small warm-up');
    for (let r = 1; r <= rounds; r++) {
      const files = names.map((name) => {
        const file = path.join(dir, `r${r}-${name}`);
        fs.linkSync(path.join(originals, name), file);
        return file;
      });
      const objects: StoredObject[] = [];
      for (const file of files) {
        objects.push(await statLocal(root, 'bench', `small/${path.basename(file)}`));
      }
      const viaService = async () => {
        const t0 = performance.now();
        const answers = await mapLimit(objects, CONCURRENCY, (object) =>
          sendEvent(service.url, finalizedEvent(object)),
        );
        const elapsed = seconds(t0);
        answers.forEach((answer, i) => expectOutcome(answer, 'loaded', `small file ${files[i]}`));
        return elapsed;
      };
      // DuckDB alone, one file after the other.
      const alone = async () => {
        const t0 = performance.now();
        for (const [i, file] of files.entries()) {
          await connection.run(
            r === 1 && i === 0
              ? `CREATE TABLE small AS SELECT * FROM read_csv('${file}')`
              : `INSERT INTO small SELECT * FROM read_csv('${file}')`,
          );
        }
        const elapsed = seconds(t0);
        const counted = (await connection.runAndReadAll('SELECT count(*) FROM small')).getRowsJS();
        if (Number(counted[0]?.[0]) !== rows * r) throw new Error('DuckDB alone: rows missing');
        return elapsed;
      };
      // Taking turns at going first.
      const baselineFirst = r % 2 === 0 ? await alone() : 0;
      const serviceSeconds = await viaService();
      const baselineSeconds = r % 2 === 0 ? baselineFirst : await alone();
      serviceRates.push(count / serviceSeconds);
      baselineRates.push(count / baselineSeconds);
      options.log(
        `  ${r}: ${count} files: service ${round(count / serviceSeconds)} files/s, ` +
          `DuckDB alone ${round(count / baselineSeconds)} files/s`,
      );
    }
  } finally {
    await service.stop();
    connection.closeSync();
    instance.closeSync();
  }
  return {
    results: [result('small-files-1000', 'files/s', serviceRates, baselineRates, '>= 1.0')],
    notes: [],
  };
}
