import { expect } from 'chai';
import { EVENTARC_RETRY, isRedelivered, retryDelayMs } from '../../src/cli/retry';

describe('local Eventarc redelivery', () => {
  it('waits 1 s, doubling up to 30 s, and gives up after 8 attempts', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => retryDelayMs(attempt));
    expect(delays).to.deep.equal([1000, 2000, 4000, 8000, 16000, 30000, 30000, undefined]);
    expect(EVENTARC_RETRY.attempts).to.equal(8);
  });

  it('follows the policy it is given', () => {
    const policy = { attempts: 3, firstDelayMs: 10, maxDelayMs: 15 };
    expect([1, 2, 3].map((a) => retryDelayMs(a, policy))).to.deep.equal([10, 15, undefined]);
  });

  const cases: [number | undefined, boolean][] = [
    [undefined, true],
    [200, false],
    [400, false],
    [413, false],
    [429, true],
    [500, true],
    [503, true],
  ];
  for (const [status, redelivered] of cases) {
    it(`${redelivered ? 'redelivers' : 'does not redeliver'} ${status ?? 'no answer'}`, () => {
      expect(isRedelivered(status)).to.equal(redelivered);
    });
  }
});
