import { expect } from 'chai';
import { finalizedEvent, sendEvent } from '../src/cli/events';
import {
  CLOUD_RUN_KILL_MS,
  DEFAULT_GRACE_SECONDS,
  longestShutdownMs,
} from '../src/receiver/shutdown';
import { startCloudReceiver, type CloudReceiver } from './helpers/cloud';

describe('shutdown within Cloud Run’s 10 s from SIGTERM to SIGKILL', function () {
  this.timeout(60_000);
  let cloud: CloudReceiver | undefined;
  after(async () => cloud?.stop());

  it('the default grace and the bounded steps after it end a second before the kill', () => {
    expect(DEFAULT_GRACE_SECONDS).to.be.greaterThan(0);
    expect(longestShutdownMs(DEFAULT_GRACE_SECONDS)).to.be.at.most(CLOUD_RUN_KILL_MS - 1000);
  });

  it('with the default grace, a load job still running is answered 503 and the process exits in time', async () => {
    // The receiver as the image runs it (no INGEST_SHUTDOWN_GRACE_SECONDS), its load job a minute long.
    cloud = await startCloudReceiver('', { jobDurationMs: 60_000 });
    const object = cloud.gcs.put('landing', 'slow.csv', 'a,b\n1,2\n');
    const answer = sendEvent(
      cloud.receiver.url,
      finalizedEvent({ ...object, size: Number(object.size) }),
    );
    while (cloud.bq.inserts().length === 0) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise((resolve) => cloud?.receiver.process.once('exit', resolve));
    const signalled = Date.now();
    cloud.receiver.process.kill('SIGTERM');
    const { status, body } = await answer;
    await exited;
    const ms = Date.now() - signalled;
    expect(status, JSON.stringify(body)).to.equal(503);
    expect(body).to.deep.include({ retryable: true });
    expect(ms, cloud.receiver.output()).to.be.below(CLOUD_RUN_KILL_MS - 1000);
  });
});
