import * as fs from 'node:fs';
import { skipSuite } from './skips';

/** Debian's chromium package; CHROMIUM_PATH names another. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The browser to test with. Where there is none the suite is skipped with the reason, unless it runs
 * in CI (CI=true) or REQUIRE_CHROMIUM=1, which make a missing browser a failure.
 */
export function chromiumOrSkip(context: Mocha.Context): string {
  if (fs.existsSync(CHROMIUM)) return CHROMIUM;
  if (process.env.CI === 'true' || process.env.REQUIRE_CHROMIUM === '1')
    throw new Error(
      `${CHROMIUM} is missing (apt-get install chromium), and CI or REQUIRE_CHROMIUM=1 is set`,
    );
  return skipSuite(
    context,
    `no browser at ${CHROMIUM} (apt-get install chromium)`,
    'set REQUIRE_CHROMIUM=1 to fail instead',
  );
}
