import { MAX_BYTES_PER_JOB } from '../objects/fanout';
import { TokenBucket } from './token-bucket';

/** What waits for a job: its bytes count against the job's limit; a settled one is dropped. */
export interface Waiting {
  size: number;
  settled: boolean;
  /** Only members of one shape (their files' header) share a job. */
  shape?: string;
}

export interface Pace {
  jobsPerDay: number;
  burst: number;
  maxFiles: number;
}

/** Runs one job for a destination; members it cannot finish it hands back with `requeue`. */
export type RunJob<T> = (destination: string, members: T[]) => Promise<void>;

interface Group<T> {
  members: T[];
  /** A split half: runs as its own job, never merged with others. */
  alone: boolean;
}

interface Lane<T> {
  bucket: TokenBucket;
  maxFiles: number;
  queue: Group<T>[];
  running: boolean;
  timer?: NodeJS.Timeout;
  /** When the first member now waiting was queued. */
  since?: number;
  /** No job starts before this: BigQuery's short-term rate limit was hit. */
  heldUntil: number;
  /** The last hold's length, doubled by the next one unless a job succeeded in between. */
  holdMs: number;
}

/**
 * How long a job that could start waits for objects of the same destination still on their way to
 * the queue (checked and read, not yet queued): they arrive within milliseconds, and one job for all
 * costs less than one for the first and another for the rest.
 */
const GATHER_MS = 50;
const GATHER_STEP_MS = 2;
/*
 * BigQuery's short-term limits (rateLimitExceeded, e.g. table metadata updates per 10 s) call for a
 * retry after a few seconds with exponential back-off (https://cloud.google.com/bigquery/docs/troubleshoot-quotas):
 * the destination holds its jobs 5 s, doubling until a job succeeds, at most 80 s.
 */
const FIRST_HOLD_MS = 5000;
const MAX_HOLD_MS = 80_000;

export interface PaceChange {
  destination: string;
  jobsPerDay: number;
  reason: string;
  /** Set when jobs are held for a while instead: the pace stays. */
  heldMs?: number;
}

/**
 * Paces and coalesces load jobs per destination table: a token bucket per destination, one job in
 * flight per destination, and what waits meanwhile goes into the next job (at most `maxFiles`
 * objects and 15 TB). With a token and nothing running, an object's job starts at once.
 */
export class Batcher<T extends Waiting> {
  private readonly lanes = new Map<string, Lane<T>>();
  private stopped: Error | undefined;

  constructor(
    private readonly run: RunJob<T>,
    private readonly onPaceChange: (change: PaceChange) => void,
    /** Whether objects for the destination are on their way to the queue. */
    private readonly arriving: (destination: string) => boolean = () => false,
    private readonly now: () => number = Date.now,
  ) {}

  /** Queues members for `destination`'s next job; `alone`: they form a job of their own. */
  add(
    destination: string,
    pace: Pace,
    members: T[],
    options: { alone?: boolean; front?: boolean } = {},
  ) {
    if (this.stopped) throw this.stopped;
    const lane = this.lane(destination, pace);
    const group = { members, alone: options.alone ?? false };
    if (options.front) lane.queue.unshift(group);
    else lane.queue.push(group);
    // Members added in the same turn (one request's objects, or a burst) share the job.
    queueMicrotask(() => this.pump(destination));
  }

  /** A job that was never inserted gives its token back. */
  refund(destination: string): void {
    this.lanes.get(destination)?.bucket.refund(this.now());
  }

  /** A job started outside the queue (a forced reload) still counts against the pace. */
  debit(destination: string, pace: Pace): void {
    this.lane(destination, pace).bucket.debit(this.now());
  }

  /**
   * BigQuery refused a job started at `jobStarted` for its daily quota: half the pace for this
   * destination, unless a job started later already did.
   */
  slowDown(destination: string, reason: string, jobStarted?: number): void {
    const lane = this.lanes.get(destination);
    if (!lane) return;
    const jobsPerDay = lane.bucket.slowDown(this.now(), jobStarted);
    if (jobsPerDay !== undefined) this.onPaceChange({ destination, jobsPerDay, reason });
  }

  /** BigQuery refused a job for a short-term rate limit: hold this destination's jobs a few seconds. */
  holdOff(destination: string, reason: string): void {
    const lane = this.lanes.get(destination);
    if (!lane) return;
    const now = this.now();
    if (now < lane.heldUntil) return;
    lane.holdMs = lane.holdMs > 0 ? Math.min(MAX_HOLD_MS, lane.holdMs * 2) : FIRST_HOLD_MS;
    lane.heldUntil = now + lane.holdMs;
    const { pace: jobsPerDay } = lane.bucket;
    this.onPaceChange({ destination, jobsPerDay, reason, heldMs: lane.holdMs });
  }

  /** A job into the destination succeeded: the next hold starts short again. */
  succeeded(destination: string): void {
    const lane = this.lanes.get(destination);
    if (lane) lane.holdMs = 0;
  }

  /** Whether BigQuery said the destination is over a limit (its pace is cut, or its jobs are held). */
  throttled(destination: string): boolean {
    const lane = this.lanes.get(destination);
    return lane !== undefined && (lane.bucket.cut || this.now() < lane.heldUntil);
  }

  /** Stops taking members and fails those waiting (they were never claimed: nothing is lost). */
  abort(reason: Error, fail: (member: T) => void): void {
    this.stopped = reason;
    for (const lane of this.lanes.values()) {
      clearTimeout(lane.timer);
      for (const group of lane.queue.splice(0)) group.members.forEach(fail);
    }
  }

  private lane(destination: string, pace: Pace): Lane<T> {
    let lane = this.lanes.get(destination);
    if (!lane) {
      const bucket = new TokenBucket(pace.jobsPerDay, pace.burst, this.now());
      lane = {
        bucket,
        maxFiles: pace.maxFiles,
        queue: [],
        running: false,
        heldUntil: 0,
        holdMs: 0,
      };
      this.lanes.set(destination, lane);
    }
    return lane;
  }

  private pump(destination: string): void {
    const lane = this.lanes.get(destination);
    if (!lane || lane.running || this.stopped) return;
    for (const group of lane.queue) group.members = group.members.filter((m) => !m.settled);
    lane.queue = lane.queue.filter((g) => g.members.length > 0);
    if (lane.queue.length === 0) {
      lane.since = undefined;
      return;
    }
    const now = this.now();
    lane.since ??= now;
    if (this.arriving(destination) && now - lane.since < GATHER_MS) {
      this.later(lane, destination, GATHER_STEP_MS);
      return;
    }
    if (now < lane.heldUntil) {
      this.later(lane, destination, lane.heldUntil - now);
      return;
    }
    if (lane.bucket.recover(now)) {
      const jobsPerDay = lane.bucket.pace;
      this.onPaceChange({ destination, jobsPerDay, reason: 'a day without a quota error' });
    }
    if (!lane.bucket.take(now)) {
      this.later(lane, destination, lane.bucket.msUntilToken(now));
      return;
    }
    const members = this.takeJob(lane);
    lane.since = lane.queue.length > 0 ? now : undefined;
    lane.running = true;
    void this.run(destination, members).finally(() => {
      lane.running = false;
      this.pump(destination);
    });
  }

  private later(lane: Lane<T>, destination: string, ms: number): void {
    clearTimeout(lane.timer);
    lane.timer = setTimeout(() => this.pump(destination), ms);
    // A waiting member keeps its own timer (its time budget); this one alone holds no process open.
    lane.timer.unref();
  }

  private takeJob(lane: Lane<T>): T[] {
    const first = lane.queue[0] as Group<T>;
    if (first.alone) {
      lane.queue.shift();
      return first.members;
    }
    const shape = first.members[0]?.shape;
    const members: T[] = [];
    let bytes = 0;
    for (const group of lane.queue) {
      if (group.alone) break;
      for (const next of [...group.members]) {
        if (members.length >= lane.maxFiles) break;
        if (next.shape !== shape) continue;
        if (members.length > 0 && bytes + next.size > MAX_BYTES_PER_JOB) break;
        members.push(next);
        bytes += next.size;
        group.members.splice(group.members.indexOf(next), 1);
      }
    }
    lane.queue = lane.queue.filter((group) => group.members.length > 0);
    return members;
  }
}
