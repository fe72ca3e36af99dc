import { expect } from 'chai';
import { createOutcomeLog } from '../../src/status/outcomes';

describe('the status page outcome log', () => {
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

  it('keeps the latest outcomes, newest first, skipped ones too, up to its limit', () => {
    const log = createOutcomeLog(3);
    log.record({ outcome: 'loaded', objects: [{ uri: 'gs://b/1.csv', outcome: 'loaded' }] }, at(1));
    log.record(
      {
        outcome: 'partial',
        objects: [
          { uri: 'gs://b/2.csv', outcome: 'skipped', reason: 'not a CSV' },
          { uri: 'gs://b/3.csv', outcome: 'rejected', reason: 'bad' },
        ],
      },
      at(2),
    );
    expect(log.version()).to.equal(2);
    log.record(
      { outcome: 'duplicate', objects: [{ uri: 'gs://b/4.csv', outcome: 'duplicate' }] },
      at(3),
    );
    expect(log.list().map((r) => [r.uri, r.outcome])).to.deep.equal([
      ['gs://b/4.csv', 'duplicate'],
      ['gs://b/2.csv', 'skipped'],
      ['gs://b/3.csv', 'rejected'],
    ]);
    log.record({ outcome: 'skipped', objects: [] }, at(4));
    expect(log.version()).to.equal(3);
  });

  it("keeps what the answer says of the schema and of the object's own rows", () => {
    const log = createOutcomeLog(3);
    const loaded = {
      outcome: 'loaded' as const,
      destination: 'ingest.t',
      rows: 96,
      jobObjects: 32,
      objectRows: 3,
      schemaChanges: ['added column extra STRING'],
    };
    log.record({ outcome: 'loaded', objects: [{ uri: 'gs://b/1.csv', ...loaded }] }, at(1));
    expect(log.list()[0]).to.include({ objectRows: 3, rows: 96, jobObjects: 32 });
    expect(log.list()[0]?.schemaChanges).to.deep.equal(['added column extra STRING']);
  });

  it('marks the outcomes whose notification went out', () => {
    const log = createOutcomeLog(3);
    log.record(
      {
        outcome: 'partial',
        objects: [
          { uri: 'gs://b/1.csv', outcome: 'loaded', notified: true },
          { uri: 'gs://b/2.csv', outcome: 'duplicate' },
        ],
      },
      at(1),
    );
    expect(log.list().map((r) => [r.uri, r.notified])).to.deep.equal([
      ['gs://b/1.csv', true],
      ['gs://b/2.csv', undefined],
    ]);
  });

  it('puts ledger entries of objects it does not list yet below, one row per object', () => {
    const log = createOutcomeLog(10);
    log.record(
      {
        outcome: 'loaded',
        objects: [{ uri: 'gs://b/new.csv', outcome: 'loaded', jobId: 'j3', rows: 1 }],
      },
      at(30),
    );
    log.seed([
      {
        time: at(30).toISOString(),
        objects: ['gs://b/new.csv'],
        outcome: 'loaded',
        jobId: 'j3',
        rows: 1,
      },
      {
        time: at(20).toISOString(),
        objects: ['gs://b/x.csv', 'gs://b/y.csv'],
        outcome: 'loaded',
        jobId: 'j2',
        rows: 7,
      },
      {
        time: at(10).toISOString(),
        objects: ['gs://b/bad.csv'],
        outcome: 'rejected',
        jobId: 'j1',
        reason: 'no',
      },
    ]);
    expect(log.list().map((r) => [r.uri, r.jobId, r.rows, r.jobObjects])).to.deep.equal([
      ['gs://b/new.csv', 'j3', 1, undefined],
      ['gs://b/x.csv', 'j2', 7, 2],
      ['gs://b/y.csv', 'j2', 7, 2],
      ['gs://b/bad.csv', 'j1', undefined, undefined],
    ]);
    expect(log.version()).to.equal(2);
  });
});
