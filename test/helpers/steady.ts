import { post } from './server';

export interface Delivered {
  uri: string;
  generation: string;
  outcome: string;
  jobId?: string;
}

export interface SteadyOptions<O> {
  count: number;
  perSecond: number;
  /** Share of objects delivered a second time later (Eventarc's at-least-once). */
  duplicates: number;
  /** Share of objects delivered twice at once (concurrent redeliveries). */
  concurrent: number;
  url: string;
  /** Writes object i and returns it. */
  create(i: number): Promise<O> | O;
  /** The request body and headers of an event for it. */
  event(object: O, delivery: number): { body: string; headers: Record<string, string> };
}

export interface SteadyResult {
  /** Every 200 answer's object results, in the order they came. */
  answers: Delivered[];
  /** Deliveries answered 503 (or not at all) and sent again. */
  redelivered: number;
  /** Milliseconds from the first event to the last answer. */
  elapsedMs: number;
  /** Seconds from each delivery to its 200 answer. */
  latencies: number[];
}

/**
 * Sends finalized events for `count` new objects at a steady rate, some of them twice (later, and at
 * once), and answers 503 as Eventarc does: by sending the event again after a pause.
 */
export async function steadyDeliveries<O>(options: SteadyOptions<O>): Promise<SteadyResult> {
  const answers: Delivered[] = [];
  const latencies: number[] = [];
  let redelivered = 0;
  let delivery = 0;
  const deliver = async (object: O): Promise<void> => {
    for (;;) {
      const { body, headers } = options.event(object, delivery++);
      const sent = Date.now();
      // A connection refused or timed out is redelivered too, as Eventarc does.
      const answer = await post(options.url, body, headers).catch(() => undefined);
      if (answer?.status === 200) {
        latencies.push((Date.now() - sent) / 1000);
        answers.push(...(answer.json as { objects: Delivered[] }).objects);
        return;
      }
      if (answer && answer.status !== 503) throw new Error(`HTTP ${answer.status}: ${answer.text}`);
      redelivered++;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  const started = Date.now();
  const work: Promise<void>[] = [];
  const later: O[] = [];
  for (let i = 0; i < options.count; i++) {
    const due = started + (i * 1000) / options.perSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const object = await options.create(i);
    work.push(deliver(object));
    // Spread deterministically: every 1/share-th object.
    if (options.concurrent > 0 && i % Math.round(1 / options.concurrent) === 3)
      work.push(deliver(object));
    if (options.duplicates > 0 && i % Math.round(1 / options.duplicates) === 1) later.push(object);
    if (later.length > 0 && i % 7 === 0) work.push(deliver(later.shift() as O));
  }
  work.push(...later.map(deliver));
  await Promise.all(work);
  return { answers, redelivered, elapsedMs: Date.now() - started, latencies };
}

/** Each object generation's count among the jobs that loaded it. */
export function countLoads(jobs: { sources: string[] }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of jobs)
    for (const source of job.sources) counts.set(source, (counts.get(source) ?? 0) + 1);
  return counts;
}
