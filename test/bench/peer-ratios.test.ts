import { expect } from 'chai';
import { concurrencyResults } from '../../bench/cloud';
import { coldStartResults } from '../../bench/coldstart';
import { MB, type BenchResult } from '../../bench/lib';

const row = (rows: BenchResult[], name: string) => {
  const found = rows.find((r) => r.name === name);
  if (!found) throw new Error(`no row ${name} in ${rows.map((r) => r.name).join(', ')}`);
  return found;
};

describe('the benchmarks against the peer', () => {
  describe('coldstart', () => {
    // Three rounds: ms and resident memory of each variant's start.
    const starts = (ms: number[], mb: number[]) =>
      ms.map((m, i) => ({ ms: m, rss: (mb[i] ?? 0) * MB }));
    const runs = new Map([
      ['noop', starts([300, 320, 310], [70, 72, 71])],
      ['local', starts([700, 720, 710], [100, 100, 100])],
      ['gcp', starts([400, 500, 450], [90, 95, 110])],
      ['peer', starts([500, 400, 450], [100, 100, 100])],
    ]);

    it('compares the gcp backend with the peer, round by round, against ≤ 1.0', () => {
      const rows = coldStartResults(runs, true);
      expect(rows.slice(0, 2).map((r) => r.name)).to.deep.equal([
        'coldstart-gcp-vs-peer-time',
        'coldstart-gcp-vs-peer-rss',
      ]);
      const time = row(rows, 'coldstart-gcp-vs-peer-time');
      // Round ratios 0.8, 1.25, 1: the median is 1, met; the spread is the rounds'.
      expect(time).to.deep.include({
        unit: 'ms',
        value: 450,
        baseline: 450,
        ratio: 1,
        min: 0.8,
        max: 1.25,
        rounds: 3,
        target: '<= 1.0',
        met: true,
        against: 'peer',
      });
      const rss = row(rows, 'coldstart-gcp-vs-peer-rss');
      expect(rss).to.deep.include({ unit: 'MB', ratio: 0.95, target: '<= 1.0', met: true });
      expect(rss.against).to.equal('peer');
    });

    it('misses both peer targets when a backend loads the other backend’s modules', () => {
      const rows = coldStartResults(runs, false);
      expect(row(rows, 'coldstart-gcp-vs-peer-time').met).to.equal(false);
      expect(row(rows, 'coldstart-gcp-vs-peer-rss').met).to.equal(false);
    });

    it('misses the time target when the gcp backend starts later than the peer', () => {
      const slower = new Map(runs).set('gcp', starts([600, 500, 550], [90, 95, 110]));
      const time = row(coldStartResults(slower, true), 'coldstart-gcp-vs-peer-time');
      expect(time.ratio).to.be.greaterThan(1);
      expect(time.met).to.equal(false);
    });

    it('keeps the ratios to the no-op, reported without a target', () => {
      const rows = coldStartResults(runs, true);
      for (const name of ['coldstart-gcp-time', 'coldstart-gcp-rss', 'coldstart-local-time']) {
        expect(row(rows, name), name).to.deep.include({ target: null, met: null });
        expect(row(rows, name).against, name).to.equal(undefined);
      }
      expect(row(rows, 'coldstart-gcp-time')).to.deep.include({ value: 450, baseline: 310 });
    });
  });

  describe('cloud-concurrency-500', () => {
    const service = [
      { wall: 4, exchanges: 9 },
      { wall: 3, exchanges: 8.5 },
      { wall: 2, exchanges: 9.5 },
    ];
    const peer = [
      { wall: 4, exchanges: 4 },
      { wall: 5, exchanges: 4.5 },
      { wall: 2.5, exchanges: 5 },
    ];

    it('divides the service’s time until all are answered by the peer’s, against ≤ 0.8', () => {
      const rows = concurrencyResults(service, peer, 1);
      // Round ratios 1, 0.6, 0.8: median 0.8, met.
      expect(row(rows, 'cloud-concurrency-500-vs-peer')).to.deep.include({
        unit: 's',
        value: 3,
        baseline: 4,
        ratio: 0.8,
        min: 0.6,
        max: 1,
        rounds: 3,
        target: '<= 0.8',
        met: true,
        against: 'peer',
      });
      const slower = concurrencyResults(
        service.map((b) => ({ ...b, wall: b.wall * 2 })),
        peer,
        1,
      );
      expect(row(slower, 'cloud-concurrency-500-vs-peer').met).to.equal(false);
    });

    it('reports the HTTP exchanges per object of both, and the time against one job', () => {
      const rows = concurrencyResults(service, peer, 1);
      expect(row(rows, 'cloud-concurrency-500-exchanges')).to.deep.include({
        unit: 'exchanges/object',
        value: 9,
        baseline: 4.5,
        target: null,
        met: null,
        against: 'peer',
      });
      expect(row(rows, 'cloud-concurrency-500')).to.deep.include({
        unit: 's',
        value: 3,
        baseline: 1,
        ratio: 3,
        target: null,
        met: null,
      });
    });
  });
});
