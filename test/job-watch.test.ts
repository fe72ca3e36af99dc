import { expect } from 'chai';
import { TransientError } from '../src/core/errors';
import { createJobWatch } from '../src/batching/job-watch';
import type { FollowedJob } from '../src/warehouses/warehouse';

const LOADED: FollowedJob = {
  result: { outcome: 'loaded', jobId: 'job_1', rows: 3 },
  uris: ['gs://landing/in/a.csv'],
};

/** A followJob whose answers the test releases, counting calls; a clock the test moves. */
function fakes() {
  let clock = 1_000_000;
  const calls: { jobId: string; deadline: number; answer: (job?: FollowedJob) => void }[] = [];
  const failures: ((error: Error) => void)[] = [];
  const watch = createJobWatch(
    (jobId, deadline) =>
      new Promise((resolve, reject) => {
        calls.push({ jobId, deadline, answer: resolve });
        failures.push(reject);
      }),
    () => clock,
  );
  const tick = (ms: number) => (clock += ms);
  return { watch, calls, failures, tick, now: () => clock };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('createJobWatch', () => {
  it('asks once for a job that many requests follow at once, and not again once it ended', async () => {
    const { watch, calls, now } = fakes();
    const finds = Array.from({ length: 300 }, () => watch.find('job_1', now() + 10_000));
    await settle();
    expect(calls).to.have.length(1);
    calls[0]?.answer(LOADED);
    expect(await Promise.all(finds)).to.deep.equal(finds.map(() => LOADED));
    expect(await watch.find('job_1', now() + 10_000)).to.equal(LOADED);
    expect(calls).to.have.length(1);
  });

  it('looks for a job it could not find again only after a pause that doubles per miss', async () => {
    const { watch, calls, tick, now } = fakes();
    const pauses: number[] = [];
    for (let miss = 0; miss < 6; miss++) {
      const find = watch.find('job_1', now() + 60_000);
      await settle();
      calls[calls.length - 1]?.answer(undefined);
      expect(await find).to.equal(undefined);
      const pause = watch.nextLookIn('job_1');
      pauses.push(pause);
      // Within the pause, requests get the miss without a lookup.
      tick(pause - 1);
      expect(await watch.find('job_1', now() + 60_000)).to.equal(undefined);
      tick(1);
    }
    expect(pauses).to.deep.equal([1000, 2000, 4000, 8000, 16_000, 16_000]);
    expect(calls).to.have.length(6);
    expect(watch.nextLookIn('job_2')).to.equal(0);
  });

  it('looks again for a request with time left when the shared lookup ran out of its own', async () => {
    const { watch, calls, failures, tick, now } = fakes();
    const short = watch.find('job_1', now() + 1000);
    await settle();
    const long = watch.find('job_1', now() + 10_000);
    tick(1000);
    failures[0]?.(new TransientError('BigQuery load job job_1 still running'));
    await short.then(
      () => expect.fail('the request whose deadline passed gets the 503'),
      (error: unknown) => expect(error).to.be.instanceOf(TransientError),
    );
    await settle();
    expect(calls).to.have.length(2);
    expect(calls[1]?.deadline).to.equal(now() + 9000);
    calls[1]?.answer(LOADED);
    expect(await long).to.equal(LOADED);
  });

  it('hands a failure that is not the end of a shorter budget to every follower', async () => {
    const { watch, calls, failures, now } = fakes();
    const finds = [watch.find('job_1', now() + 1000), watch.find('job_1', now() + 1000)];
    await settle();
    failures[0]?.(new TransientError('BigQuery answered 503'));
    const outcomes = await Promise.allSettled(finds);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['rejected', 'rejected']);
    expect(calls).to.have.length(1);
  });
});
