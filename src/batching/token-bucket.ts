const DAY_MS = 24 * 60 * 60 * 1000;
// However many quota errors come, a destination keeps at least one job an hour.
const MIN_JOBS_PER_DAY = 24;

/**
 * Load jobs a destination may start: `jobsPerDay` refilling continuously, at most `burst` saved up.
 * A quota error halves the rate; each full day without one doubles it back, up to `jobsPerDay`. Pure:
 * every method takes the time.
 */
export class TokenBucket {
  private tokens: number;
  private rate: number;
  private lastRefill: number;
  private lastCut: number | undefined;

  constructor(
    readonly jobsPerDay: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.rate = jobsPerDay;
    this.lastRefill = now;
  }

  /** Jobs per day at the current pace. */
  get pace(): number {
    return this.rate;
  }

  /** Takes a token when there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Takes a token whether or not there is one: the next jobs wait the longer (a forced reload). */
  debit(now: number): void {
    this.refill(now);
    this.tokens -= 1;
  }

  /** Gives back a token taken for a job that was never inserted. */
  refund(now: number): void {
    this.refill(now);
    this.tokens = Math.min(this.burst, this.tokens + 1);
  }

  /** Milliseconds until a token is there (0 when one is). */
  msUntilToken(now: number): number {
    this.refill(now);
    if (this.tokens >= 1 || !Number.isFinite(this.rate)) return 0;
    return Math.ceil(((1 - this.tokens) * DAY_MS) / this.rate);
  }

  /** Whether a quota error has cut the pace and a day without one has not yet restored it. */
  get cut(): boolean {
    return this.lastCut !== undefined;
  }

  /**
   * After a quota error: half the pace and no saved tokens. A job started before the last cut brings
   * no news (jobs that ran side by side fail together): nothing changes. Returns the new pace, or
   * undefined when it did not change.
   */
  slowDown(now: number, jobStarted = now): number | undefined {
    this.refill(now);
    this.tokens = Math.min(this.tokens, 0);
    if (this.lastCut !== undefined && jobStarted < this.lastCut) return undefined;
    this.lastCut = now;
    const base = Number.isFinite(this.rate) ? this.rate : this.jobsPerDay;
    const rate = Math.max(MIN_JOBS_PER_DAY, base / 2);
    if (rate === this.rate) return undefined;
    this.rate = rate;
    return rate;
  }

  /** Doubles a cut pace back once a day has passed without a quota error; true when it changed. */
  recover(now: number): boolean {
    if (this.lastCut === undefined || now - this.lastCut < DAY_MS) return false;
    this.refill(now);
    this.rate = Math.min(this.jobsPerDay, this.rate * 2);
    this.lastCut = this.rate < this.jobsPerDay ? now : undefined;
    return true;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.lastRefill);
    this.lastRefill = now;
    if (!Number.isFinite(this.rate)) {
      this.tokens = this.burst;
      return;
    }
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / DAY_MS);
  }
}
