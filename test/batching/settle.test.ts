import { expect } from 'chai';
import type { Pace } from '../../src/batching/batcher';
import type { BatchContext } from '../../src/batching/context';
import { jobIdOf } from '../../src/batching/job-ids';
import { newMember } from '../../src/batching/members';
import { settleJob } from '../../src/batching/settle';
import type { BatchObject, Member } from '../../src/batching/types';
import { loadConfig, type BatchOptions, type Route } from '../../src/config';
import type { ObjectResult } from '../../src/objects/outcomes';
import type { ClaimedLoadResult, LoadJob } from '../../src/warehouses/warehouse';
import { MemoryPublisher, MemoryStore, MemoryWarehouse } from '../fakes/memory';

const TABLE = 'my-proj.ds.events';
const PACE: Pace = { jobsPerDay: 1000, burst: 10, maxFiles: 10_000 };

/** One job's worth of members, and a context whose batcher records what settling asks of it. */
function setup(count: number) {
  const config = loadConfig(
    {},
    () => 'project: my-proj\nroutes:\n  - match: "in/*.csv"\n    dataset: ds\n    table: events\n',
  );
  const route = config.routes[0] as Route & { batch: BatchOptions };
  const store = new MemoryStore();
  const warehouse = new MemoryWarehouse(store);
  const requeued: { members: Member[]; alone?: boolean; front?: boolean }[] = [];
  const calls: string[] = [];
  const batcher = {
    add: (_t: string, _p: Pace, members: Member[], o: { alone?: boolean; front?: boolean } = {}) =>
      requeued.push({ members, ...o }),
    succeeded: () => calls.push('succeeded'),
    slowDown: () => calls.push('slowDown'),
    holdOff: () => calls.push('holdOff'),
  };
  const ctx = {
    services: {
      config,
      store,
      warehouse,
      publisher: new MemoryPublisher(),
      claims: store.claims(),
    },
    log: { warn: () => undefined },
    batcher,
    inFlight: new Map(),
    arriving: new Map(),
    paceOf: () => PACE,
  } as unknown as BatchContext;
  const made = Array.from({ length: count }, (_, i) => {
    const object = store.put('landing', `in/f${i}.csv`, `id\n${i}\n`);
    const item: BatchObject = {
      object,
      route,
      destination: { project: 'my-proj', dataset: 'ds', table: 'events' },
    };
    return newMember(item, '1', Date.now() + 10_000);
  });
  const members = made.map((m) => m.member);
  const job = {
    jobId: 'ingest_job',
    sources: members.map((m) => m.item.object),
    destination: members[0]!.item.destination,
  } as LoadJob;
  const settle = (result: ClaimedLoadResult) =>
    settleJob(ctx, TABLE, members, job, result, Date.now());
  const outcomes = () => Promise.all(made.map((m) => m.outcome));
  return { members, made, requeued, calls, settle, outcomes, store };
}

describe('settling a coalesced job', () => {
  it("gives each member its own rows and replaced rows, and the job's schema changes once", async () => {
    const { settle, outcomes, calls } = setup(3);
    await settle({
      outcome: 'loaded',
      jobId: 'ingest_job',
      rows: 6,
      sourceRows: [1, 2, 3],
      replacedRows: [0, 4, 0],
      schemaChanges: ['added column extra STRING'],
    });
    const results = (await outcomes()) as ObjectResult[];
    expect(
      results.map((r) => [r.outcome, r.objectRows, r.replacedRows, r.jobObjects]),
    ).to.deep.equal([
      ['loaded', 1, 0, 3],
      ['loaded', 2, 4, 3],
      ['loaded', 3, 0, 3],
    ]);
    expect(results.map((r) => r.schemaChanges)).to.deep.equal([
      ['added column extra STRING'],
      undefined,
      undefined,
    ]);
    expect(calls).to.deep.equal(['succeeded']);
  });

  it('rejects the member a reason names and puts the others back at the front', async () => {
    const { settle, members, requeued, store } = setup(3);
    await settle({
      outcome: 'rejected',
      jobId: 'ingest_job',
      reason: 'bad row in gs://landing/in/f1.csv',
    });
    expect(members[1]!.settled).to.equal(true);
    expect(store.metadataOf('landing', '_quarantine/in/f1.csv')).to.not.equal(undefined);
    expect(requeued).to.have.length(1);
    expect(requeued[0]!.members.map((m) => m.item.object.name)).to.deep.equal([
      'in/f0.csv',
      'in/f2.csv',
    ]);
    expect(requeued[0]!.front).to.equal(true);
  });

  it('halves a job whose reason names no member, each half going alone', async () => {
    const { settle, requeued } = setup(5);
    await settle({ outcome: 'rejected', jobId: 'ingest_job', reason: 'too many errors' });
    expect(requeued.map((r) => [r.members.length, r.alone])).to.deep.equal([
      [2, true],
      [3, true],
    ]);
  });

  it('skips the members a newer generation supersedes and requeues the rest', async () => {
    const { settle, requeued, members, made } = setup(3);
    await settle({
      outcome: 'superseded',
      jobId: 'ingest_job',
      newer: { 'gs://landing/in/f2.csv': '99' },
    });
    expect(members[2]!.settled).to.equal(true);
    const skipped = (await made[2]!.outcome) as ObjectResult;
    expect(skipped).to.include({ outcome: 'skipped', uri: 'gs://landing/in/f2.csv' });
    expect(skipped.reason).to.match(/newer generation \(99\)/);
    expect(requeued[0]!.members.map((m) => m.item.object.name)).to.deep.equal([
      'in/f0.csv',
      'in/f1.csv',
    ]);
  });

  it('slows the pace on a daily quota and requeues every member', async () => {
    const { settle, requeued, calls } = setup(2);
    await settle({
      outcome: 'failed',
      jobId: 'ingest_job',
      reason: 'quotaExceeded',
      quota: 'daily',
    });
    expect(calls).to.deep.equal(['slowDown']);
    expect(requeued.flatMap((r) => r.members)).to.have.length(2);
  });
});

describe('job ids of coalesced jobs', () => {
  it('are new for every job of the same members, and a forced reload keeps its prefix', () => {
    const { members } = setup(2);
    const first = jobIdOf(members);
    expect(first).to.match(/^ingest_[0-9a-f]{64}$/);
    expect(jobIdOf(members)).to.not.equal(first);
    const forced = members.map((m) => ({ ...m, forced: 'ingest_forced_abc' }));
    expect(jobIdOf(forced)).to.match(/^ingest_forced_abc_[0-9a-f]{8}$/);
  });
});
