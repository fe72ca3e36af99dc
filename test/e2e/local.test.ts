import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import { createLocalStore } from '../../src/stores/local';
import { queryDuckDb } from '../helpers/duckdb';
import {
  PUBSUB_TYPE,
  STORAGE_TYPE,
  binaryEvent,
  objectResource,
  pubsubData,
  pushBody,
} from '../helpers/events';
import { REPO_ROOT, post, startReceiver, type RunningServer } from '../helpers/server';

const CONFIG = `
routes:
  - match: "typed/*.csv"
    dataset: typed
    table: items
    schema: schema.json
  - match: "sales/{table}/{yyyy}/{mm}/{dd}/*.csv"
    dataset: sales
    table: "{table}"
    write: partition
  - match: "**/*.csv"
  - match: "**/*.csv.gz"
`;
const SCHEMA = [
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'name', type: 'STRING' },
  { name: 'amount', type: 'NUMERIC' },
  { name: 'day', type: 'DATE' },
];

describe('end to end: the receiver on the local backend', function () {
  this.timeout(120_000);
  let dir: string;
  let server: RunningServer;
  const warehouse = () => path.join(dir, 'data', 'warehouse.duckdb');
  const store = () => createLocalStore(path.join(dir, 'data'));

  async function put(bucket: string, name: string, content: string | Buffer) {
    const file = path.join(dir, 'data', 'buckets', bucket, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    const object = await store().stat(bucket, name);
    if (!object) throw new Error(`${file} was not written`);
    return object;
  }
  async function emit(bucket: string, name: string) {
    const object = await store().stat(bucket, name);
    if (!object) throw new Error(`no ${bucket}/${name}`);
    return sendEvent(server.url, finalizedEvent(object));
  }
  const count = async (table: string) =>
    Number((await queryDuckDb(warehouse(), `SELECT count(*) AS n FROM ${table}`))[0]?.n);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-e2e-'));
    fs.writeFileSync(path.join(dir, 'ingest.yaml'), CONFIG);
    fs.writeFileSync(path.join(dir, 'schema.json'), JSON.stringify(SCHEMA));
    server = await startReceiver(
      { LOCAL_DATA_DIR: path.join(dir, 'data'), INGEST_CONFIG: path.join(dir, 'ingest.yaml') },
      dir,
    );
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads a finalized object and answers with its rows', async () => {
    await put(
      'demo',
      'us-states.csv',
      fs.readFileSync(path.join(REPO_ROOT, 'fixtures', 'us-states.csv')),
    );
    const answer = await emit('demo', 'us-states.csv');
    expect(answer.status).to.equal(200);
    expect(answer.body).to.deep.include({ outcome: 'loaded' });
    const [object] = (answer.body as { objects: Record<string, unknown>[] }).objects;
    expect(object).to.include({
      uri: 'gs://demo/us-states.csv',
      outcome: 'loaded',
      destination: 'test-project.ingest.us_states',
      rows: 50,
    });
    expect(await count('ingest.us_states')).to.equal(50);
    const ledger = await queryDuckDb(
      warehouse(),
      `SELECT job_id, rows::INTEGER AS rows FROM _ingest.loads`,
    );
    expect(ledger).to.deep.equal([{ job_id: object?.jobId, rows: 50 }]);
  });

  it('loads 20 identical events once: one loaded, 19 duplicate', async () => {
    await put('demo', 'twenty.csv', 'a,b\n1,2\n3,4\n');
    const object = await store().stat('demo', 'twenty.csv');
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        sendEvent(server.url, finalizedEvent(object as NonNullable<typeof object>)),
      ),
    );
    const outcomes = answers.map((a) => (a.body as { outcome: string }).outcome).sort();
    expect(outcomes).to.deep.equal([...Array<string>(19).fill('duplicate'), 'loaded']);
    expect(await count('ingest.twenty')).to.equal(2);
  });

  it('loads again on a forced reprocess through messagePublished, once per message', async () => {
    const message = (id: string) =>
      binaryEvent(
        PUBSUB_TYPE,
        pubsubData({ bucket: 'demo', name: 'twenty.csv', force: true }, {}, id),
      );
    const forced = await post(server.url, message('m-1').body, message('m-1').headers);
    expect(forced.json).to.deep.include({ outcome: 'loaded' });
    const redelivered = await post(server.url, message('m-1').body, message('m-1').headers);
    expect(redelivered.json).to.deep.include({ outcome: 'duplicate' });
    const unforced = pushBody({ bucket: 'demo', name: 'twenty.csv' });
    expect((await post(server.url, unforced.body, unforced.headers)).json).to.deep.include({
      outcome: 'duplicate',
    });
    expect(await count('ingest.twenty')).to.equal(4);
  });

  it('loads names Cloud Storage allows (%2F, backslash, tab, "*") by event, and a prefix reprocess agrees', async () => {
    const names = ['odd/a%2Fb.csv', 'odd/back\\slash.csv', 'odd/tab\there.csv', 'odd/star*.csv'];
    for (const name of names) {
      await put('demo', name, 'id\n1\n2\n');
      const answer = await emit('demo', name);
      expect(answer.status, name).to.equal(200);
      const [object] = (answer.body as { objects: Record<string, unknown>[] }).objects;
      expect(object, name).to.include({ uri: `gs://demo/${name}`, outcome: 'loaded', rows: 2 });
    }
    const prefix = pushBody({ bucket: 'demo', prefix: 'odd/' });
    const again = await post(server.url, prefix.body, prefix.headers);
    expect(again.status).to.equal(200);
    const objects = (again.json as { objects: { uri: string; outcome: string }[] }).objects;
    expect(Object.fromEntries(objects.map((o) => [o.uri, o.outcome]))).to.deep.equal(
      Object.fromEntries(names.map((n) => [`gs://demo/${n}`, 'duplicate'])),
    );
  });

  it('skips an empty object, a replaced generation and a file no route takes', async () => {
    await put('demo', 'empty.csv', '');
    expect((await emit('demo', 'empty.csv')).body).to.deep.include({ outcome: 'skipped' });
    const first = await put('demo', 'replaced.csv', 'a\n1\n');
    await new Promise((r) => setTimeout(r, 5));
    await put('demo', 'replaced.csv', 'a\n1\n2\n');
    const stale = await sendEvent(server.url, finalizedEvent(first));
    expect((stale.body as { objects: { reason: string }[] }).objects[0]?.reason).to.match(
      /was replaced by/,
    );
    await put('demo', 'notes.txt', 'hello');
    expect((await emit('demo', 'notes.txt')).body).to.deep.include({ outcome: 'skipped' });
  });

  const BAD: { name: string; content: string | Buffer; reason: RegExp }[] = [
    {
      name: 'unterminated-quote.csv',
      content: 'a,b\n1,"open\n2,3\n',
      reason: /malformed CSV|quote|unterminated/i,
    },
    { name: 'ragged-rows.csv', content: 'a,b,c\n1,2,3\n4,5\n', reason: /column|row|line/i },
    { name: 'too-many-columns.csv', content: 'a,b\n1,2\n3,4,5\n', reason: /column|row|line/i },
    {
      name: 'binary-garbage.csv',
      content: Buffer.from([
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
      ]),
      reason: /binary data: NUL byte/,
    },
    {
      name: 'invalid-utf8.csv',
      content: Buffer.concat([
        Buffer.from('a,b\n1,'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('\n'),
      ]),
      reason: /not valid UTF-8/,
    },
    {
      name: 'corrupt.csv.gz',
      content: Buffer.from('this is not gzip at all'),
      reason: /not valid gzip data/,
    },
    {
      name: 'typed/wrong-header.csv',
      content: 'id,title,amount,day\n1,a,2.5,2026-01-01\n',
      reason: /^column "title" is not in table test-project\.typed\.items \(newColumns: reject\)$/,
    },
    {
      name: 'typed/type-error.csv',
      content: 'id,name,amount,day\n1,a,2.5,2026-01-01\nseven,b,1,2026-01-02\n',
      reason: /seven|id|line|row/i,
    },
    {
      name: 'typed/bad-date.csv',
      content: 'id,name,amount,day\n1,a,2.5,2026-13-45\n',
      reason: /date|day|2026-13-45/i,
    },
    {
      name: 'typed/required-null.csv',
      content: 'id,name,amount,day\n,a,2.5,2026-01-01\n',
      reason: /id|null|required/i,
    },
  ];
  for (const bad of BAD) {
    it(`rejects ${bad.name} with a reason, writes nothing and quarantines it`, async () => {
      const object = await put('bad', bad.name, bad.content);
      const answer = await emit('bad', bad.name);
      expect(answer.status).to.equal(200);
      const [result] = (answer.body as { objects: { outcome: string; reason: string }[] }).objects;
      expect(result?.outcome, JSON.stringify(result)).to.equal('rejected');
      expect(result?.reason).to.match(bad.reason);
      const quarantined = path.join(dir, 'data', 'buckets', 'bad', '_quarantine', bad.name);
      expect(fs.readFileSync(quarantined)).to.deep.equal(
        Buffer.isBuffer(bad.content) ? bad.content : Buffer.from(bad.content),
      );
      const metadata = JSON.parse(
        fs.readFileSync(`${quarantined}.metadata.json`, 'utf8'),
      ) as Record<string, string>;
      expect(metadata).to.include({
        'ingest-reason': result?.reason,
        'ingest-generation': object.generation,
      });
      const tables = await queryDuckDb(
        warehouse(),
        `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables`,
      );
      const written = tables
        .map((t) => t.t)
        .filter(
          (t) =>
            t === 'typed.items' ||
            String(t).startsWith(
              `ingest.${path.basename(bad.name).split('.')[0]?.replace(/-/g, '_')}`,
            ),
        );
      for (const table of written) expect(await count(String(table)), `${table}`).to.equal(0);
    });
  }

  it('keeps every file of a partition: p2 (2 rows) then p3 (1 row) leave 3 rows', async () => {
    const day = 'sales/orders/2024/03/01';
    await put('shop', `${day}/p2.csv`, 'id,v\n1,a\n2,b\n');
    expect((await emit('shop', `${day}/p2.csv`)).body).to.deep.include({ outcome: 'loaded' });
    await put('shop', `${day}/p3.csv`, 'id,v\n3,c\n');
    const answer = await emit('shop', `${day}/p3.csv`);
    expect((answer.body as { objects: object[] }).objects[0]).to.include({
      outcome: 'loaded',
      rows: 3,
      reason: 'partition 20240301 holds 2 objects',
    });
    const rows = await queryDuckDb(
      warehouse(),
      `SELECT id FROM sales.orders WHERE _PARTITIONDATE = DATE '2024-03-01' ORDER BY id`,
    );
    expect(rows.map((r) => Number(r.id))).to.deep.equal([1, 2, 3]);
  });

  it('ends with every file of the day when several land and are delivered at once', async () => {
    const day = 'sales/orders/2024/03/02';
    const names = Array.from({ length: 6 }, (_, i) => `${day}/part-${i}.csv`);
    for (const [i, name] of names.entries()) await put('shop', name, `id,v\n${i},x\n`);
    const answers = await Promise.all([...names, ...names].map((name) => emit('shop', name)));
    expect(answers.map((a) => a.status)).to.deep.equal(answers.map(() => 200));
    const rows = await queryDuckDb(
      warehouse(),
      `SELECT id FROM sales.orders WHERE _PARTITIONDATE = DATE '2024-03-02' ORDER BY id`,
    );
    expect(rows.map((r) => Number(r.id))).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });

  it('loads a good typed file and gzip input', async () => {
    await put('good', 'typed/ok.csv', 'id,name,amount,day\n1,a,2.5,2026-01-01\n2,,3,2026-01-02\n');
    expect((await emit('good', 'typed/ok.csv')).body).to.deep.include({ outcome: 'loaded' });
    expect(await count('typed.items')).to.equal(2);
    await put('good', 'typed/reordered.csv', 'day,name,id\n2026-01-03,c,3\n');
    const reordered = (await emit('good', 'typed/reordered.csv')).body;
    expect(reordered).to.deep.include({ outcome: 'loaded' });
    const row = await queryDuckDb(
      warehouse(),
      `SELECT name, amount, CAST(day AS VARCHAR) AS day FROM typed.items WHERE id = 3`,
    );
    expect(row).to.deep.equal([{ name: 'c', amount: null, day: '2026-01-03' }]);
    await put('good', 'in/zipped.csv.gz', zlib.gzipSync('x,y\n1,2\n3,4\n5,6\n'));
    expect((await emit('good', 'in/zipped.csv.gz')).body).to.deep.include({ outcome: 'loaded' });
    expect(await count('ingest.zipped')).to.equal(3);
  });

  const BAD_REQUESTS: {
    name: string;
    headers: Record<string, string>;
    body: string;
    error: RegExp;
    status?: number;
  }[] = [
    {
      name: 'malformed JSON',
      headers: { 'content-type': 'application/json' },
      body: '{"message": ',
      error: /^body: not valid JSON/,
    },
    {
      name: 'malformed structured CloudEvent',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: '{"specversion":',
      error: /^body: not valid JSON/,
    },
    {
      name: 'a JSON string',
      headers: { 'content-type': 'application/json' },
      body: '"hello"',
      error: /^body: /,
    },
    { name: 'an empty body', headers: {}, body: '', error: /^body: empty/ },
    {
      name: 'plain text',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
      error: /^body: not valid JSON/,
    },
    {
      name: 'JSON that is neither',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
      error: /not a CloudEvent/,
    },
    {
      name: 'unsupported event type',
      ...binaryEvent('google.cloud.storage.object.v1.deleted', objectResource('demo', 'a.csv', 1)),
      error: /^type: unsupported event type/,
    },
    {
      name: 'missing ce-id',
      headers: {
        'ce-specversion': '1.0',
        'ce-source': 's',
        'ce-type': STORAGE_TYPE,
        'content-type': 'application/json',
      },
      body: '{}',
      error: /^ce-id: missing/,
    },
    {
      name: 'missing data.name',
      ...binaryEvent(STORAGE_TYPE, { bucket: 'demo', generation: '1' }),
      error: /^data\.name: required/,
    },
    {
      name: 'bad generation',
      ...binaryEvent(STORAGE_TYPE, objectResource('demo', 'a.csv', '1.5')),
      error: /^data\.generation/,
    },
    {
      name: 'bad size',
      ...binaryEvent(STORAGE_TYPE, objectResource('demo', 'a.csv', '1', 'big')),
      error: /^data\.size/,
    },
    {
      name: 'invalid bucket',
      ...binaryEvent(STORAGE_TYPE, objectResource('UPPER', 'a.csv', '1')),
      error: /^data\.bucket/,
    },
    {
      name: 'a name with ..',
      ...binaryEvent(STORAGE_TYPE, objectResource('demo', '../../etc/passwd.csv', '1')),
      error: /^object name ".*" escapes its bucket/,
    },
    {
      name: 'message data not base64',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: { data: '***', messageId: '1' } }),
      error: /^body\.message\.data: not base64/,
    },
    {
      name: 'message data not JSON',
      ...pushBody('not json'),
      error: /^body\.message\.data: not valid JSON/,
    },
    {
      name: 'message with unknown fields',
      ...pushBody({ bucket: 'demo', file: 'a.csv' }),
      error: /^body\.message\.data/,
    },
    {
      name: 'force without a message id',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from('{"bucket":"demo","name":"a.csv","force":true}').toString('base64'),
        },
      }),
      error: /messageId: required/,
    },
    {
      name: 'a body over the limit',
      headers: { 'content-type': 'application/json' },
      body: `{"pad":"${'x'.repeat(1024 * 1024 + 10)}"}`,
      error: /over the limit/,
      status: 413,
    },
  ];
  for (const bad of BAD_REQUESTS) {
    it(`answers ${bad.status ?? 400} to ${bad.name} with a JSON error and keeps serving`, async () => {
      const answer = await post(server.url, bad.body, bad.headers);
      expect(answer.status, answer.text).to.equal(bad.status ?? 400);
      expect(answer.headers.get('content-type')).to.match(/^application\/json/);
      expect(answer.json.error).to.match(bad.error);
      expect(answer.text).not.to.match(/ at .*\.js:\d+|<html|<pre/i);
      expect((await fetch(`${server.url}health`)).status).to.equal(200);
    });
  }

  it('answers GET /health and JSON for unknown paths and methods', async () => {
    expect(await (await fetch(`${server.url}health`)).json()).to.deep.equal({ status: 'ok' });
    const get = await fetch(server.url);
    expect([get.status, await get.json()]).to.deep.equal([
      400,
      { error: 'method GET: events are sent with POST' },
    ]);
    expect((await fetch(`${server.url}nowhere`, { method: 'POST' })).status).to.equal(404);
  });

  it('accepts a structured-mode CloudEvent built by the SDK', async () => {
    const object = await put('demo', 'structured.csv', 'a\n1\n');
    const event = new CloudEvent({
      type: STORAGE_TYPE,
      source: '//storage.googleapis.com/projects/_/buckets/demo',
      data: objectResource('demo', 'structured.csv', object.generation, object.size),
    });
    const answer = await post(server.url, JSON.stringify(event), {
      'content-type': 'application/cloudevents+json',
    });
    expect(answer.json).to.deep.include({ outcome: 'loaded' });
  });
});
