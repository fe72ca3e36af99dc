import { TransientError } from '../core/errors';
import type { FollowedJob } from '../warehouses/warehouse';

/** A job a claim names but that cannot be found is looked up again after this, doubling per miss. */
const FIRST_MISS_PAUSE_MS = 1000;
const LONGEST_MISS_PAUSE_MS = 16_000;
/** Job ids whose misses or final results are remembered, the oldest forgotten first. */
const REMEMBERED = 10_000;

/** The warehouse's `followJob`: the job's end, awaited while it runs; undefined when there is none. */
export type FollowJob = (jobId: string, deadline: number) => Promise<FollowedJob | undefined>;

/**
 * How the requests of one instance follow the job ids claims name. Many objects of one job, and the
 * redeliveries of each, follow the same id at once: they share one lookup, which ends when the job
 * does, and a job that cannot be found is looked up again only after a pause that grows per miss.
 * A warehouse limits its API calls per method and user, so one request per job id is what this costs.
 */
export interface JobWatch {
  /**
   * What the job came to (final once known: a finished job does not change), or undefined when it
   * cannot be found, also without asking while its pause after the last miss runs.
   */
  find(jobId: string, deadline: number): Promise<FollowedJob | undefined>;
  /** How long until a job that could not be found is looked up again; 0 when it may be now. */
  nextLookIn(jobId: string): number;
}

export function createJobWatch(follow: FollowJob, now: () => number = Date.now): JobWatch {
  const looking = new Map<string, { deadline: number; done: Promise<FollowedJob | undefined> }>();
  const missed = new Map<string, { next: number; pause: number }>();
  const finished = new Map<string, FollowedJob>();

  function remember<T>(map: Map<string, T>, jobId: string, value: T): void {
    map.delete(jobId);
    map.set(jobId, value);
    if (map.size > REMEMBERED) map.delete(map.keys().next().value as string);
  }

  function lookUp(jobId: string, deadline: number) {
    const done = follow(jobId, deadline)
      .then((job) => {
        if (job) {
          missed.delete(jobId);
          remember(finished, jobId, job);
        } else {
          const pause = Math.min(
            (missed.get(jobId)?.pause ?? FIRST_MISS_PAUSE_MS / 2) * 2,
            LONGEST_MISS_PAUSE_MS,
          );
          remember(missed, jobId, { next: now() + pause, pause });
        }
        return job;
      })
      .finally(() => looking.delete(jobId));
    const look = { deadline, done };
    looking.set(jobId, look);
    return look;
  }

  return {
    async find(jobId, deadline) {
      for (;;) {
        const known = finished.get(jobId);
        if (known) return known;
        if (now() < (missed.get(jobId)?.next ?? 0)) return undefined;
        const look = looking.get(jobId) ?? lookUp(jobId, deadline);
        try {
          return await look.done;
        } catch (error) {
          // A shared lookup gives up at the deadline of the request that started it; a request with
          // more time left looks again.
          const outlived = look.deadline < deadline && now() >= look.deadline;
          if (!(error instanceof TransientError && outlived && now() < deadline)) throw error;
        }
      }
    },
    nextLookIn: (jobId) => Math.max(0, (missed.get(jobId)?.next ?? 0) - now()),
  };
}
