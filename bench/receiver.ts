import autocannon from 'autocannon';
import { HTTP, type CloudEvent } from 'cloudevents';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../src/cli/events';
import {
  expectOutcome,
  putLocal,
  releaseCpus,
  result,
  separateCpus,
  startIngest,
  startNoop,
  type BenchOptions,
  type BenchReport,
} from './lib';

const CONNECTIONS = 50;

/**
 * 1. Receiver overhead: requests per second at 50 connections for the `ingest` target (local
 * backend) answering a `skipped` and a `duplicate` event, against a no-op Functions Framework
 * function given the same request. Fifteen rounds of 1 s each (--quick: three); in each round the
 * three take turns, each round starting with another. Short rounds keep a ratio's two measurements
 * a second or two apart, so that other load on the machine, which comes and goes over seconds,
 * falls on both alike. Where it can, this process (the load generator) and the services run on CPUs
 * of their own, so that they do not take turns on one core.
 */
export async function receiverOverhead(options: BenchOptions): Promise<BenchReport> {
  const rounds = options.quick ? 3 : 15;
  const seconds = 1;
  const root = path.join(options.work, 'data');
  const csv = await putLocal(root, 'bench', 'in/states.csv', 'state,code\nOhio,OH\nUtah,UT\n');
  const skipped = finalizedEvent({ ...csv, name: 'in/readme.txt' });
  const duplicate = finalizedEvent(csv);

  const cpus = separateCpus();
  const noop = await startNoop(options, cpus?.service);
  const ingest = await startIngest(options, { LOCAL_DATA_DIR: root }, cpus?.service).catch(
    async (error: unknown) => {
      await noop.stop();
      throw error;
    },
  );
  try {
    expectOutcome(await sendEvent(ingest.url, skipped), 'skipped', 'receiver: skipped event');
    expectOutcome(await sendEvent(ingest.url, duplicate), 'loaded', 'receiver: first delivery');
    expectOutcome(await sendEvent(ingest.url, duplicate), 'duplicate', 'receiver: redelivery');
    const runs = [
      { label: 'no-op', url: noop.url, event: skipped, rates: [] as number[] },
      { label: 'skipped', url: ingest.url, event: skipped, rates: [] as number[] },
      { label: 'duplicate', url: ingest.url, event: duplicate, rates: [] as number[] },
    ];
    for (const run of runs) await load(run.url, run.event, 1); // warm-up: JIT, sockets
    for (let round = 0; round < rounds; round++) {
      const turn = [...runs.slice(round % 3), ...runs.slice(0, round % 3)];
      for (const run of turn) {
        const measured = await load(run.url, run.event, seconds);
        run.rates.push(measured.answered / measured.seconds);
      }
      options.log(
        `  round ${round + 1}: ${runs.map((r) => `${r.label} ${round1(r.rates[round] ?? 0)}`).join(', ')} req/s`,
      );
    }
    const [noopRps, skippedRps, duplicateRps] = runs.map((r) => r.rates);
    return {
      results: [
        result('receiver-skipped', 'req/s', skippedRps ?? [], noopRps ?? [], '>= 0.8'),
        result('receiver-duplicate', 'req/s', duplicateRps ?? [], noopRps ?? [], '>= 0.6'),
      ],
      notes: [],
    };
  } finally {
    if (cpus) releaseCpus(cpus);
    await Promise.all([noop.stop(), ingest.stop()]);
  }
}

/** Answers in `duration` s at 50 connections; every answer must be 2xx. */
async function load(
  url: string,
  event: CloudEvent<object>,
  duration: number,
): Promise<{ answered: number; seconds: number }> {
  const message = HTTP.binary(event);
  const run = await autocannon({
    url,
    method: 'POST',
    headers: message.headers as Record<string, string>,
    body: String(message.body),
    connections: CONNECTIONS,
    duration,
  });
  if (run.non2xx > 0 || run.errors > 0) {
    throw new Error(`receiver: ${url}: ${run.non2xx} non-2xx answers, ${run.errors} errors`);
  }
  return { answered: run['2xx'], seconds: run.duration };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
