import { expect } from 'chai';
import {
  filterHistory,
  matchesTable,
  parseDuration,
  type HistoryEntry,
} from '../../src/history/entry';

describe('history entries', () => {
  const durations: [string, number | undefined][] = [
    ['30m', 30 * 60_000],
    ['24h', 24 * 3_600_000],
    ['7d', 7 * 86_400_000],
    ['45s', 45_000],
    [' 2h ', 7_200_000],
    ['0h', undefined],
    ['24', undefined],
    ['h', undefined],
    ['1.5h', undefined],
    ['-1d', undefined],
    ['2w', undefined],
    ['1h30m', undefined],
    ['99999999999999999d', undefined],
  ];
  for (const [text, ms] of durations) {
    it(`reads the duration ${JSON.stringify(text)} as ${ms ?? 'not a duration'}`, () => {
      expect(parseDuration(text)).to.equal(ms);
    });
  }

  const tables: [string | undefined, string, boolean][] = [
    ['ingest.states', 'states', true],
    ['ingest.states', 'ingest.states', true],
    ['p.ingest.states', 'ingest.states', true],
    ['p.ingest.states', 'p.ingest.states', true],
    ['sales.daily$20240101', 'sales.daily', true],
    ['ingest.states', 'other.states', false],
    ['ingest.states_2', 'states', false],
    ['ingest.states', 'x.ingest.states', false],
    [undefined, 'states', false],
  ];
  for (const [destination, filter, expected] of tables) {
    it(`${expected ? 'matches' : 'does not match'} ${destination} with --table ${filter}`, () => {
      expect(matchesTable(destination, filter)).to.equal(expected);
    });
  }

  it('keeps what is recent enough, of the table and outcome asked, newest first', () => {
    const entry = (time: string, outcome: HistoryEntry['outcome'], destination: string) => ({
      time,
      objects: [`gs://b/${time}.csv`],
      outcome,
      destination,
    });
    const entries: HistoryEntry[] = [
      entry('2026-01-01T10:00:00.000Z', 'loaded', 'ingest.a'),
      entry('2026-01-01T12:00:00.000Z', 'rejected', 'ingest.a'),
      entry('2026-01-01T11:00:00.000Z', 'loaded', 'ingest.b'),
      entry('2025-12-31T11:00:00.000Z', 'loaded', 'ingest.a'),
    ];
    const since = new Date('2026-01-01T00:00:00Z');
    const times = (kept: HistoryEntry[]) => kept.map((e) => e.time.slice(11, 13));
    expect(times(filterHistory(entries, { since }))).to.deep.equal(['12', '11', '10']);
    expect(times(filterHistory(entries, { since, table: 'a' }))).to.deep.equal(['12', '10']);
    expect(times(filterHistory(entries, { since, outcome: 'loaded' }))).to.deep.equal(['11', '10']);
  });
});
