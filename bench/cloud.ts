import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../src/cli/events';
import { HEAD_BYTES } from '../src/schema/header';
import { isInsert, isJobGet, startBigQueryServer } from '../test/servers/bigquery-server';
import { startGcsServer, type ObjectResource } from '../test/servers/gcs-server';
import {
  MB,
  cpuOf,
  expectOutcome,
  median,
  result,
  round,
  rssOf,
  seconds,
  startIngest,
  type BenchOptions,
  type BenchReport,
} from './lib';

const JOB_MS = 1000;
const GiB = 1024 * MB;

/**
 * 6. The cloud path against the Cloud Storage and BigQuery test servers: bytes the service reads from
 * a 1 MB and a 10 GiB object (and its memory after each), and three rounds of 500 concurrent
 * events (--quick: 50) whose load jobs each take 1 s.
 */
export async function cloudPath(options: BenchOptions): Promise<BenchReport> {
  const concurrent = options.quick ? 50 : 500;
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: JOB_MS });
  const home = path.join(options.work, 'home'); // no Application Default Credentials in here
  fs.mkdirSync(home);
  const service = await startIngest(options, {
    INGEST_BACKEND: 'gcp',
    STORAGE_EMULATOR_HOST: gcs.url,
    BIGQUERY_EMULATOR_HOST: bq.url,
    HOME: home,
    CLOUDSDK_CONFIG: home,
  });
  const emit = (resource: ObjectResource) =>
    sendEvent(service.url, finalizedEvent({ ...resource, size: Number(resource.size) }));
  try {
    const warm = gcs.put('bench', 'warm-up.csv', 'a,b\n1,x\n', { contentType: 'text/csv' });
    expectOutcome(await emit(warm), 'loaded', 'cloud warm-up');

    const read = async (name: string, size: number) => {
      const resource = gcs.putVirtual('bench', name, size, { contentType: 'text/csv' });
      expectOutcome(await emit(resource), 'loaded', `cloud ${name}`);
      return { bytes: gcs.bytesServed('bench', name), rss: rssOf(service.pid) };
    };
    const small = await read('virtual/one-mb.csv', MB);
    const huge = await read('virtual/ten-gib.csv', 10 * GiB);
    options.log(
      `  bytes read: 1 MB object ${small.bytes}, 10 GiB object ${huge.bytes}; ` +
        `RSS after: ${round(small.rss / MB)} MB, ${round(huge.rss / MB)} MB`,
    );

    const walls: number[] = [];
    for (let r = 1; r <= 3; r++) {
      const resources = Array.from({ length: concurrent }, (_, i) =>
        gcs.put('bench', `many/${r}/part-${i}.csv`, `id,value\n${i},x\n`, {
          contentType: 'text/csv',
        }),
      );
      bq.resetCounters();
      gcs.resetCounters();
      const cpu0 = cpuOf(service.pid);
      const t0 = performance.now();
      const answers = await Promise.all(resources.map(emit));
      walls.push(seconds(t0));
      const cpuMs = ((cpuOf(service.pid) - cpu0) * 1000) / concurrent;
      answers.forEach((answer, i) => expectOutcome(answer, 'loaded', `cloud event ${i}`));
      options.log(
        `  ${concurrent} concurrent events, ${JOB_MS} ms jobs: ${round(walls.at(-1) ?? 0)} s; ` +
          `${bq.count(isInsert)} jobs.insert, ${bq.count(isJobGet)} jobs.get, ` +
          `${gcs.count()} Cloud Storage requests; ` +
          `service CPU ${round(cpuMs)} ms per event`,
      );
    }
    const wall = median(walls);
    const bytesOk = huge.bytes <= HEAD_BYTES && huge.bytes === small.bytes;
    return {
      results: [
        result('cloud-bytes-10gib', 'bytes', [huge.bytes], [small.bytes], `<= 1`, bytesOk),
        result(
          `cloud-concurrency-500`,
          's',
          walls,
          walls.map(() => JOB_MS / 1000),
          '<= 2',
        ),
      ],
      notes: [
        `cloud: bytes read ${small.bytes} (1 MB object) and ${huge.bytes} (10 GiB object), at most ${HEAD_BYTES} allowed; ` +
          `RSS after each ${round(small.rss / MB)} MB and ${round(huge.rss / MB)} MB`,
        `cloud: ${concurrent} concurrent events with ${JOB_MS} ms load jobs took ${round(wall)} s (median of ${walls.length})`,
      ],
    };
  } finally {
    await service.stop();
    await bq.close();
    await gcs.close();
  }
}
