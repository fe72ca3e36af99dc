import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent, sendEvent, type EventAnswer } from '../src/cli/events';
import { HEAD_BYTES } from '../src/schema/header';
import { isInsert, isJobGet, startBigQueryServer } from '../test/servers/bigquery-server';
import { startGcsServer, type ObjectResource } from '../test/servers/gcs-server';
import {
  MB,
  PEER_SOURCE,
  cpuOf,
  expectOutcome,
  expectStatus,
  firstAnswer,
  median,
  result,
  round,
  rssOf,
  seconds,
  spawnFramework,
  startIngest,
  type BenchOptions,
  type BenchReport,
  type BenchResult,
  type Service,
} from './lib';

const JOB_MS = 1000;
const GiB = 1024 * MB;

/**
 * 6. The cloud path against the Cloud Storage and BigQuery test servers: bytes the service reads from
 * a 1 MB and a 10 GiB object (and its memory after each), and three rounds of 500 concurrent
 * events (--quick: 50), each for an object of its own, whose load jobs each take 1 s: sent to the
 * service and to the peer (`bench/peer/`), taking turns at going first.
 */
export async function cloudPath(options: BenchOptions): Promise<BenchReport> {
  const concurrent = options.quick ? 50 : 500;
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: JOB_MS });
  const home = path.join(options.work, 'home'); // no Application Default Credentials in here
  fs.mkdirSync(home);
  const env = {
    INGEST_BACKEND: 'gcp',
    STORAGE_EMULATOR_HOST: gcs.url,
    BIGQUERY_EMULATOR_HOST: bq.url,
    HOME: home,
    CLOUDSDK_CONFIG: home,
  };
  const service = await startIngest(options, env);
  let peer: Service | undefined;
  const eventOf = (resource: ObjectResource) =>
    finalizedEvent({ ...resource, size: Number(resource.size) });
  const emit = (resource: ObjectResource) => sendEvent(service.url, eventOf(resource));
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

    // The peer starts once its first event, a warm-up as the service's, is answered.
    peer = await spawnFramework(options, 'peer', PEER_SOURCE, env);
    const peerWarm = gcs.put('bench', 'peer/warm-up.csv', 'a,b\n1,x\n', {
      contentType: 'text/csv',
    });
    expectStatus(await firstAnswer(peer, eventOf(peerWarm)), 204, 'cloud peer warm-up');

    const subjects: Subject[] = [
      {
        name: 'service',
        process: service,
        prefix: 'many',
        check: (answer, what) => expectOutcome(answer, 'loaded', what),
        bursts: [],
      },
      {
        name: 'peer',
        process: peer,
        prefix: 'peer',
        check: (answer, what) => expectStatus(answer, 204, what),
        bursts: [],
      },
    ];
    for (let r = 1; r <= 3; r++) {
      const turn = r % 2 === 1 ? subjects : [...subjects].reverse();
      for (const subject of turn) {
        const resources = Array.from({ length: concurrent }, (_, i) =>
          gcs.put('bench', `${subject.prefix}/${r}/part-${i}.csv`, `id,value\n${i},x\n`, {
            contentType: 'text/csv',
          }),
        );
        bq.resetCounters();
        gcs.resetCounters();
        const cpu0 = cpuOf(subject.process.pid);
        const t0 = performance.now();
        const answers = await Promise.all(
          resources.map((resource) => sendEvent(subject.process.url, eventOf(resource))),
        );
        const wall = seconds(t0);
        const exchanges = (bq.count() + gcs.count()) / concurrent;
        const cpuMs = ((cpuOf(subject.process.pid) - cpu0) * 1000) / concurrent;
        answers.forEach((answer, i) => subject.check(answer, `cloud ${subject.name} event ${i}`));
        subject.bursts.push({ wall, exchanges });
        options.log(
          `  ${subject.name}: ${concurrent} concurrent events, ${JOB_MS} ms jobs: ${round(wall)} s; ` +
            `${bq.count(isInsert)} jobs.insert, ${bq.count(isJobGet)} jobs.get, ` +
            `${gcs.count()} Cloud Storage requests: ${round(exchanges)} HTTP exchanges per object; ` +
            `CPU ${round(cpuMs)} ms per event`,
        );
      }
    }
    const [ours, theirs] = subjects.map((subject) => subject.bursts) as [Burst[], Burst[]];
    const bytesOk = huge.bytes <= HEAD_BYTES && huge.bytes === small.bytes;
    const wall = (bursts: Burst[]) => round(median(bursts.map((b) => b.wall)));
    const exchanges = (bursts: Burst[]) => round(median(bursts.map((b) => b.exchanges)));
    return {
      results: [
        result('cloud-bytes-10gib', 'bytes', [huge.bytes], [small.bytes], `<= 1`, bytesOk),
        ...concurrencyResults(ours, theirs, JOB_MS / 1000),
      ],
      notes: [
        `cloud: bytes read ${small.bytes} (1 MB object) and ${huge.bytes} (10 GiB object), at most ${HEAD_BYTES} allowed; ` +
          `RSS after each ${round(small.rss / MB)} MB and ${round(huge.rss / MB)} MB`,
        `cloud: ${concurrent} concurrent events with ${JOB_MS} ms load jobs took ${wall(ours)} s, the peer ${wall(theirs)} s ` +
          `(medians of ${ours.length}); HTTP exchanges per object: ${exchanges(ours)}, the peer ${exchanges(theirs)}`,
      ],
    };
  } finally {
    await Promise.all([service.stop(), peer?.stop()]);
    await bq.close();
    await gcs.close();
  }
}

/** One round of concurrent events: seconds until all were answered, HTTP exchanges per object. */
export interface Burst {
  wall: number;
  exchanges: number;
}

interface Subject {
  name: string;
  process: Service;
  /** Where its objects go: each object is its own table, named by the file (part_0 … part_499). */
  prefix: string;
  check(answer: EventAnswer, what: string): void;
  bursts: Burst[];
}

/**
 * The concurrency rows from the service's rounds and the peer's (`service[i]` against `peer[i]`):
 * the service's time over the peer's (target ≤ 0.8), its exchanges per object over the peer's, and
 * its time over one job's (`jobSeconds`), reported.
 */
export function concurrencyResults(
  service: Burst[],
  peer: Burst[],
  jobSeconds: number,
): BenchResult[] {
  const walls = (bursts: Burst[]) => bursts.map((b) => b.wall);
  const exchanges = (bursts: Burst[]) => bursts.map((b) => b.exchanges);
  return [
    {
      ...result('cloud-concurrency-500-vs-peer', 's', walls(service), walls(peer), '<= 0.8'),
      against: 'peer',
    },
    {
      ...result(
        'cloud-concurrency-500-exchanges',
        'exchanges/object',
        exchanges(service),
        exchanges(peer),
        null,
      ),
      against: 'peer',
    },
    result(
      'cloud-concurrency-500',
      's',
      walls(service),
      service.map(() => jobSeconds),
      null,
    ),
  ];
}
