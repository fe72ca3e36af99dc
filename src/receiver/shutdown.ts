/**
 * How long shutdown may take. Cloud Run sends SIGTERM and, 10 seconds later, SIGKILL
 * (https://cloud.google.com/run/docs/container-contract#instance-shutdown). After the grace, each
 * later step has its own bound; the default grace leaves room for all of them and a margin, so that
 * every request is answered before the kill.
 */
export const CLOUD_RUN_KILL_MS = 10_000;

/** Bounds on the steps after the grace: stopping the loads, letting their requests answer, writing the answers out, closing the warehouse. */
export const STEP_MS = { abort: 3000, settle: 1000, flush: 1000, close: 2000 } as const;

const MARGIN_MS = 1000;
const STEPS_MS = STEP_MS.abort + STEP_MS.settle + STEP_MS.flush + STEP_MS.close;

/** The default of INGEST_SHUTDOWN_GRACE_SECONDS: 2 s, what the kill window leaves. */
export const DEFAULT_GRACE_SECONDS = (CLOUD_RUN_KILL_MS - STEPS_MS - MARGIN_MS) / 1000;

/** The longest a shutdown takes after SIGTERM with a given grace. */
export function longestShutdownMs(graceSeconds: number): number {
  return graceSeconds * 1000 + STEPS_MS;
}
