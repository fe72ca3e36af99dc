/**
 * Suites skipped for want of a tool (gcloud, the Pub/Sub emulator, a browser), each with its reason.
 * The root hook in setup.ts lists them at the end of the run, so that a gate that skips them says so
 * (Cloud Build's test step has no gcloud; .ci/run requires them all).
 */
export const skipped: { suite: string; reason: string }[] = [];

/** Skips the suite whose `before` hook this is, recording why. */
export function skipSuite(context: Mocha.Context, reason: string, instead: string): never {
  skipped.push({ suite: context.test?.parent?.fullTitle() ?? '(unknown suite)', reason });
  console.log(`    skipped: ${reason}; ${instead}`);
  return context.skip();
}

/** The end-of-run summary of what was skipped, or nothing when nothing was. */
export function skipSummary(): string {
  if (skipped.length === 0) return '';
  const lines = skipped.map((s) => `  - ${s.suite}: ${s.reason}`);
  return [
    `SKIPPED ${skipped.length} suites (set REQUIRE_GCLOUD=1 and REQUIRE_CHROMIUM=1 to fail instead, as .ci/run does):`,
    ...lines,
  ].join('\n');
}
