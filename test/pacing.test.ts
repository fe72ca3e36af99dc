import { expect } from 'chai';
import { Batcher, type PaceChange } from '../src/batching/batcher';
import { TokenBucket } from '../src/batching/token-bucket';
import { quotaLimitOf } from '../src/warehouses/bigquery';

const DAY_MS = 86_400_000;
const DAILY = 'Quota exceeded: Your table exceeded quota for imports or query appends per table';
const SHORT_TERM = 'Exceeded rate limits: too many table update operations for this table';

describe('TokenBucket', () => {
  it('cuts the pace once for jobs that failed side by side, again for a job started after the cut', () => {
    const bucket = new TokenBucket(1000, 10, 0);
    expect(bucket.slowDown(100, 10)).to.equal(500);
    expect(bucket.slowDown(101, 20)).to.equal(undefined);
    expect(bucket.pace).to.equal(500);
    expect(bucket.slowDown(300, 200)).to.equal(250);
  });

  it('reports no change at the floor of 24 a day', () => {
    const bucket = new TokenBucket(30, 1, 0);
    expect(bucket.slowDown(1)).to.equal(24);
    expect(bucket.slowDown(2)).to.equal(undefined);
    expect(bucket.cut).to.equal(true);
    expect(bucket.recover(2 + DAY_MS)).to.equal(true);
    expect(bucket.cut).to.equal(false);
  });
});

describe('Batcher holds', () => {
  it('holds a table 5 s on a rate limit, doubling while no job succeeds, at most 80 s', () => {
    let now = 0;
    const changes: PaceChange[] = [];
    const batcher = new Batcher(
      async () => undefined,
      (change) => changes.push(change),
      () => false,
      () => now,
    );
    batcher.debit('p.d.t', { jobsPerDay: 1000, burst: 10, maxFiles: 10 });
    const hold = () => {
      batcher.holdOff('p.d.t', 'rateLimitExceeded');
      expect(batcher.throttled('p.d.t')).to.equal(true);
      now += 100_000;
      expect(batcher.throttled('p.d.t')).to.equal(false);
    };
    for (let i = 0; i < 6; i++) hold();
    batcher.succeeded('p.d.t');
    hold();
    expect(changes.map((c) => c.heldMs)).to.deep.equal([
      5000, 10_000, 20_000, 40_000, 80_000, 80_000, 5000,
    ]);
    expect(changes.every((c) => c.jobsPerDay === 1000)).to.equal(true);
  });
});

describe('quotaLimitOf', () => {
  const cases: [string, string, ReturnType<typeof quotaLimitOf>][] = [
    ['quotaExceeded', DAILY, 'daily'],
    ['rateLimitExceeded', SHORT_TERM, 'shortTerm'],
    ['quotaExceeded', SHORT_TERM, 'shortTerm'],
    [
      'rateLimitExceeded',
      'Exceeded rate limits: too many api requests per user per method',
      'shortTerm',
    ],
    ['backendError', 'Backend error', undefined],
  ];
  for (const [reason, message, limit] of cases) {
    it(`${reason} "${message}" is ${String(limit)}`, () => {
      expect(quotaLimitOf(reason, message)).to.equal(limit);
    });
  }
});
