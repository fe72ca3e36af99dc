import { errorMessage } from '../core/errors';
import { gsUri, type StoredObject } from '../stores/store';
import {
  answerOutcome,
  describeAnswer,
  describeSendError,
  finalizedEvent,
  sendEvent,
  type EventAnswer,
} from './events';
import { EVENTARC_RETRY, isRedelivered, retryDelayMs, type RetryPolicy } from './retry';

export interface DeliveryOptions {
  url: string;
  /** The object as it is now; undefined once it is gone. */
  restat: (object: StoredObject) => Promise<StoredObject | undefined>;
  /** How a person sends an object again by hand. */
  resendHint: (object: StoredObject) => string;
  print: (line: string) => void;
  policy?: RetryPolicy;
  /** Requests in flight at most; the rest wait their turn. */
  concurrency?: number;
}

export interface Delivery {
  /**
   * Sends the object's finalized event and redelivers it as Eventarc does; resolves with the
   * object's outcome, or undefined when it got none. `quietSkip` leaves `skipped` outcomes unprinted.
   */
  send(object: StoredObject, options?: { quietSkip?: boolean }): Promise<string | undefined>;
  /** Stops redelivering and waits for requests in flight: returns what was left unsent. */
  stop(): Promise<string[]>;
}

type Attempt = { answer: EventAnswer } | { error: unknown };

/** The local Eventarc's delivery: one finalized event per object, redelivered on 5xx or no answer. */
export function createDelivery(options: DeliveryOptions): Delivery {
  const policy = options.policy ?? EVENTARC_RETRY;
  const limit = createLimit(options.concurrency ?? 32);
  const running = new Set<Promise<unknown>>();
  const { sleep, wakeAll } = createSleeper();
  const unsent = new Set<string>();
  let stopping = false;

  const attempt = (object: StoredObject): Promise<Attempt | undefined> =>
    limit(async () => {
      if (stopping) return undefined;
      try {
        return { answer: await sendEvent(options.url, finalizedEvent(object)) };
      } catch (error) {
        return { error };
      }
    });

  async function deliver(object: StoredObject, quietSkip: boolean): Promise<string | undefined> {
    for (let attempts = 1; ; attempts += 1) {
      const result = await attempt(object);
      if (result && 'answer' in result && !isRedelivered(result.answer.status)) {
        const outcome = answerOutcome(result.answer);
        if (!(quietSkip && outcome === 'skipped'))
          describeAnswer(result.answer).forEach(options.print);
        return outcome;
      }
      if (stopping || !result) {
        unsent.add(gsUri(object));
        return undefined;
      }
      const problem = describeProblem(options.url, result);
      const delay = retryDelayMs(attempts, policy);
      const uri = `${gsUri(object)}#${object.generation}`;
      if (delay === undefined) {
        options.print(
          `gave up   ${uri} after ${attempts} attempts: ${problem}; send it again with \`${options.resendHint(object)}\` (or restart dev)`,
        );
        return undefined;
      }
      options.print(
        `retry     ${uri} in ${delay / 1000} s (attempt ${attempts + 1} of ${policy.attempts}): ${problem}`,
      );
      await sleep(delay);
      if (stopping) {
        unsent.add(gsUri(object));
        return undefined;
      }
      if (!(await stillCurrent(options, object, uri))) return undefined;
    }
  }

  return {
    send(object, { quietSkip = false } = {}) {
      if (stopping) {
        unsent.add(gsUri(object));
        return Promise.resolve(undefined);
      }
      const sending = deliver(object, quietSkip);
      running.add(sending);
      const done = () => running.delete(sending);
      sending.then(done, done);
      return sending;
    },
    async stop() {
      stopping = true;
      wakeAll();
      await Promise.allSettled([...running]);
      return [...unsent].sort();
    },
  };
}

function describeProblem(url: string, result: Attempt): string {
  return 'answer' in result
    ? describeAnswer(result.answer).join('; ')
    : describeSendError(url, result.error);
}

/** Whether the object is still the generation that was sent; a deleted or replaced one is dropped, and said so. */
async function stillCurrent(
  options: DeliveryOptions,
  object: StoredObject,
  uri: string,
): Promise<boolean> {
  const now = await options.restat(object).catch((error: unknown) => {
    options.print(`dropped   ${uri}: ${errorMessage(error)}`);
    return null;
  });
  if (now === null) return false;
  if (!now) {
    options.print(`dropped   ${uri}: deleted before it could be sent again`);
    return false;
  }
  if (now.generation !== object.generation) {
    options.print(`dropped   ${uri}: replaced by generation ${now.generation}, sent on its own`);
    return false;
  }
  return true;
}

/** Sleeps between redeliveries that `wakeAll` ends at once, so that stopping need not wait them out. */
function createSleeper() {
  const wakers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakers.add(wake);
    });
  const wakeAll = () => {
    for (const wake of [...wakers]) wake();
  };
  return { sleep, wakeAll };
}

/** Runs at most `concurrency` pieces of work at a time, the rest in the order they came. */
function createLimit(concurrency: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (active < concurrency) active += 1;
    else await new Promise<void>((resolve) => waiting.push(resolve)); // the slot is handed over
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active -= 1;
    }
  };
}
