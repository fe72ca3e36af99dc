import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipSuite } from './skips';

/** What gcloud says when it has parsed every argument and stops only for want of an account. */
export const NO_ACCOUNT =
  /You do not currently have an active account selected|no credentialed accounts/i;

export function findGcloud(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, 'gcloud');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/**
 * The gcloud to test with. Where there is none the suite is skipped with the reason, unless
 * REQUIRE_GCLOUD=1 (as in CI), which makes a missing gcloud a failure.
 */
export function gcloudOrSkip(context: Mocha.Context): string {
  const found = findGcloud();
  if (found) return found;
  if (process.env.REQUIRE_GCLOUD === '1')
    throw new Error('gcloud is not on PATH, and REQUIRE_GCLOUD=1');
  return skipSuite(
    context,
    'the Google Cloud CLI (gcloud) is not on PATH',
    'set REQUIRE_GCLOUD=1 to fail instead',
  );
}

/** No credentials, no prompts, no metadata server; anything past the account check would meet a closed port. */
export function isolatedEnv(config: string): NodeJS.ProcessEnv {
  const closed = 'http://127.0.0.1:9/';
  return {
    PATH: process.env.PATH,
    HOME: config,
    LANG: 'C.UTF-8',
    CLOUDSDK_CONFIG: config,
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDBUILD: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_EVENTARC: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB: closed,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER: closed,
  };
}
