import { expect } from 'chai';
import { loadConfig, type NotifyOptions } from '../src/config';
import { ingestKey, notifyOptionsFor, toNotifications } from '../src/objects/notify';
import type { ObjectResult } from '../src/objects/outcomes';

const TOPIC = 'projects/p/topics/outcomes';
const NOW = new Date('2026-12-02T00:57:15.000Z');
const DEFAULT: NotifyOptions = { topic: TOPIC, outcomes: ['loaded', 'rejected'] };
const ALL: NotifyOptions = {
  topic: TOPIC,
  outcomes: ['loaded', 'rejected', 'skipped', 'duplicate', 'queued'],
};

const loaded: ObjectResult = {
  uri: 'gs://landing/in/a.csv',
  generation: '1700000000000001',
  outcome: 'loaded',
  destination: 'my-proj.sales.orders',
  jobId: 'ingest_aaa',
  rows: 12,
  jobObjects: 3,
  schemaChanges: ['added column extra STRING'],
};
const rejected: ObjectResult = {
  uri: 'gs://landing/in/bad.csv',
  generation: '1700000000000002',
  outcome: 'rejected',
  destination: 'my-proj.sales.orders',
  jobId: 'ingest_bbb',
  reason: 'Expected Number of Columns: 2 Found: 3 (line 2)',
};

const tell = (results: ObjectResult[], options: NotifyOptions | undefined = DEFAULT) =>
  toNotifications(results, () => options, NOW);

describe('outcome notifications: the message', () => {
  it('a loaded object: its JSON, attributes to filter on, the ingest-key and the job summary', () => {
    const [n, ...more] = tell([loaded]);
    expect(more).to.deep.equal([]);
    expect(n?.topic).to.equal(TOPIC);
    expect(n?.json).to.deep.equal({
      uri: 'gs://landing/in/a.csv',
      generation: '1700000000000001',
      outcome: 'loaded',
      destination: 'my-proj.sales.orders',
      rows: 12,
      badRecords: 0,
      jobId: 'ingest_aaa',
      reason: null,
      schemaChanges: ['added column extra STRING'],
      time: '2026-12-02T00:57:15.000Z',
    });
    const key = ingestKey('loaded', 'ingest_aaa', loaded.uri, '1700000000000001');
    expect(key).to.match(/^[0-9a-f]{64}$/);
    expect(n?.attributes).to.deep.equal({
      outcome: 'loaded',
      bucket: 'landing',
      dataset: 'sales',
      table: 'orders',
      'ingest-key': key,
      'job-id': 'ingest_aaa',
      'job-objects': '3',
      'job-rows': '12',
    });
    expect(n?.recordOn).to.deep.equal({
      bucket: 'landing',
      name: 'in/a.csv',
      generation: '1700000000000001',
    });
  });

  it('a rejected object: its reason, no rows, and no job-rows attribute', () => {
    const [n] = tell([rejected]);
    expect(n?.json).to.include({ outcome: 'rejected', rows: null, badRecords: null });
    expect(n?.json.reason).to.equal(rejected.reason);
    expect(n?.attributes).to.include({ outcome: 'rejected', 'job-id': 'ingest_bbb' });
    expect(n?.attributes).not.to.have.property('job-rows');
    expect(n?.recordOn?.name).to.equal('in/bad.csv');
  });

  it('the same outcome gives the same ingest-key at any time; another job or generation another', () => {
    const at = (result: ObjectResult, now: Date) =>
      toNotifications([result], () => DEFAULT, now)[0]?.key;
    const later = new Date(NOW.getTime() + 3_600_000);
    expect(at(loaded, NOW)).to.equal(at(loaded, later));
    expect(at({ ...loaded, jobId: 'ingest_aaa_rM1' }, NOW)).to.not.equal(at(loaded, NOW));
    expect(at({ ...loaded, generation: '9' }, NOW)).to.not.equal(at(loaded, NOW));
  });

  it('a duplicate tells its job\'s "loaded" again under the same key, without the duplicate\'s reason', () => {
    const duplicate: ObjectResult = {
      uri: loaded.uri,
      generation: loaded.generation,
      outcome: 'duplicate',
      destination: loaded.destination,
      jobId: loaded.jobId,
      rows: 12,
      jobObjects: 3,
    };
    const [again, ...more] = tell([duplicate]);
    expect(more).to.deep.equal([]);
    expect(again?.key).to.equal(tell([loaded])[0]?.key);
    expect(again?.json).to.include({ outcome: 'loaded', rows: 12, badRecords: null, reason: null });
    expect(again?.attributes).to.include({ outcome: 'loaded', 'job-objects': '3' });
    expect(again?.recordOn).to.not.equal(undefined);
  });

  it('with duplicate among the outcomes, a duplicate also gets a message of its own, never recorded', () => {
    const duplicate: ObjectResult = { ...loaded, outcome: 'duplicate', reason: 'already loaded' };
    const messages = tell([duplicate], ALL);
    expect(messages.map((m) => m.json.outcome)).to.deep.equal(['loaded', 'duplicate']);
    expect(messages[1]?.recordOn).to.equal(undefined);
    expect(messages[1]?.key).to.not.equal(messages[0]?.key);
    expect(messages[1]?.json.reason).to.equal('already loaded');
  });

  const listed: { name: string; result: ObjectResult; options: NotifyOptions; told: number }[] = [
    { name: 'skipped, by default', result: skipped(), options: DEFAULT, told: 0 },
    { name: 'skipped, when asked for', result: skipped(), options: ALL, told: 1 },
    { name: 'queued, by default', result: queued(), options: DEFAULT, told: 0 },
    { name: 'queued, when asked for', result: queued(), options: ALL, told: 1 },
    {
      name: 'loaded, when only rejections are asked for',
      result: loaded,
      options: { topic: TOPIC, outcomes: ['rejected'] },
      told: 0,
    },
    {
      name: 'a duplicate, when only rejections are asked for',
      result: { ...loaded, outcome: 'duplicate' },
      options: { topic: TOPIC, outcomes: ['rejected'] },
      told: 0,
    },
  ];
  for (const c of listed) {
    it(`tells ${c.told === 0 ? 'nothing of' : 'of'} ${c.name}`, () => {
      expect(tell([c.result], c.options)).to.have.length(c.told);
    });
  }

  it('a skipped object: no destination, no job, nothing recorded', () => {
    const [n] = tell([skipped()], ALL);
    expect(n?.attributes).to.deep.equal({
      outcome: 'skipped',
      bucket: 'landing',
      'ingest-key': ingestKey('skipped', null, 'gs://landing/notes.txt', '5'),
    });
    expect(n?.json).to.include({ destination: null, jobId: null, reason: 'not a CSV' });
    expect(n?.recordOn).to.equal(undefined);
  });

  it('one message per object of a coalesced job, each with the same job summary', () => {
    const members = ['a', 'b', 'c'].map((name, i) => ({
      ...loaded,
      uri: `gs://landing/in/${name}.csv`,
      objectRows: i + 1,
    }));
    const messages = tell(members);
    expect(messages.map((m) => m.json.uri)).to.deep.equal(members.map((m) => m.uri));
    expect(new Set(messages.map((m) => m.key)).size).to.equal(3);
    const summaries = messages.map((m) =>
      ['job-id', 'job-objects', 'job-rows'].map((a) => m.attributes[a]),
    );
    expect(new Set(summaries.map((s) => s.join()))).to.deep.equal(new Set(['ingest_aaa,3,12']));
  });

  it("counts a job's objects in the request when the result does not say (a truncating batch)", () => {
    const members = ['a', 'b'].map((name) => ({
      ...loaded,
      uri: `gs://landing/snap/${name}.csv`,
      jobObjects: undefined,
    }));
    expect(tell(members).map((m) => m.attributes['job-objects'])).to.deep.equal(['2', '2']);
  });

  it('names dataset and table of any destination form; replacedRows when lineage gave it', () => {
    const forms: [string, string, string][] = [
      ['example.com:my-proj.sales.orders', 'sales', 'orders'],
      ['sales.orders', 'sales', 'orders'],
      ['my-proj.sales.days$20261128', 'sales', 'days'],
    ];
    for (const [destination, dataset, table] of forms) {
      expect(tell([{ ...loaded, destination }])[0]?.attributes).to.include({ dataset, table });
    }
    const [n] = tell([{ ...loaded, replacedRows: 4 }]);
    expect(n?.json.replacedRows).to.equal(4);
    expect(tell([loaded])[0]?.json).not.to.have.property('replacedRows');
  });

  it('tells nothing where no notify applies', () => {
    expect(toNotifications([loaded, rejected], () => undefined, NOW)).to.deep.equal([]);
  });
});

describe('outcome notifications: which notify applies', () => {
  const config = loadConfig({}, (file) => {
    if (file !== 'ingest.yaml') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return `notify: {topic: ${TOPIC}, outcomes: [loaded, rejected, skipped]}
buckets: [landing]
routes:
  - match: "sales/*.csv"
    notify: {topic: projects/p/topics/sales}
  - match: "quiet/*.csv"
    notify: false
  - match: "**/*.csv"
`;
  });
  const cases: [string, string | undefined][] = [
    ['gs://landing/sales/a.csv', 'projects/p/topics/sales'],
    ['gs://landing/quiet/a.csv', undefined],
    ['gs://landing/in/a.csv', TOPIC],
    ['gs://landing/notes.txt', TOPIC],
    ['gs://elsewhere/sales/a.csv', TOPIC],
    ['gs://landing/_quarantine/sales/a.csv', TOPIC],
  ];
  for (const [uri, topic] of cases) {
    it(`${uri}: ${topic ?? 'none'}`, () => {
      expect(notifyOptionsFor(uri, config)?.topic).to.equal(topic);
    });
  }
});

function skipped(): ObjectResult {
  return {
    uri: 'gs://landing/notes.txt',
    generation: '5',
    outcome: 'skipped',
    reason: 'not a CSV',
  };
}

function queued(): ObjectResult {
  return { uri: 'gs://landing/many/1.csv', generation: '6', outcome: 'queued' };
}
