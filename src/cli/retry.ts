/** How the local Eventarc redelivers: 1 s, doubling, at most 30 s apart, 8 attempts in all (~1.5 min). */
export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const EVENTARC_RETRY: RetryPolicy = { attempts: 8, firstDelayMs: 1000, maxDelayMs: 30_000 };

/** The wait before attempt `attempt + 1`, after `attempt` attempts failed; undefined: give up. */
export function retryDelayMs(attempt: number, policy: RetryPolicy = EVENTARC_RETRY) {
  if (attempt >= policy.attempts) return undefined;
  return Math.min(policy.firstDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
}

/** Eventarc redelivers an event that was not answered, or answered 429 or 5xx; 2xx and 4xx end it. */
export function isRedelivered(status: number | undefined): boolean {
  return status === undefined || status === 429 || status >= 500;
}
