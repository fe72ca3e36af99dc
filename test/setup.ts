import { skipSummary } from './helpers/skips';

// Loaded by mocha before any test: no client library may probe the metadata server or find a real project.
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GOOGLE_CLOUD_PROJECT = 'test-project';
delete process.env.GOOGLE_APPLICATION_CREDENTIALS;

/** Mocha root hooks: after every suite, the list of suites skipped for want of a tool. */
export const mochaHooks = {
  afterAll(): void {
    const summary = skipSummary();
    if (summary !== '') console.log(`\n${summary}`);
  },
};
