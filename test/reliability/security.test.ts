import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import { createLocalStore } from '../../src/stores/local';
import { queryDuckDb } from '../helpers/duckdb';
import { STORAGE_TYPE, binaryEvent, objectResource, pushBody } from '../helpers/events';
import { post, startReceiver, type RunningServer } from '../helpers/server';

interface Answer {
  outcome: string;
  objects: { outcome: string; reason?: string }[];
}

describe('security on the running receiver', function () {
  this.timeout(120_000);
  let dir: string;
  let server: RunningServer;
  const bucketDir = (bucket: string) => path.join(dir, 'data', 'buckets', bucket);
  function put(bucket: string, name: string, content: string) {
    const file = path.join(bucketDir(bucket), name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  async function emit(bucket: string, name: string): Promise<Answer> {
    const object = await createLocalStore(path.join(dir, 'data')).stat(bucket, name);
    const data = object ?? { bucket, name, generation: '1', size: 10 };
    const request = binaryEvent(
      STORAGE_TYPE,
      objectResource(data.bucket, data.name, data.generation, data.size),
    );
    return (await post(server.url, request.body, request.headers)).json as unknown as Answer;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-security-'));
    fs.writeFileSync(
      path.join(dir, 'ingest.yaml'),
      'buckets: [landing]\nreprocess: {inlineLimit: 5}\nroutes:\n  - match: "t/{table}/*.csv"\n    table: "{table}"\n  - match: "**/*.csv"\n',
    );
    fs.writeFileSync(path.join(dir, 'secret.csv'), 'secret,value\nhunter2,1\n');
    server = await startReceiver(
      {
        LOCAL_DATA_DIR: path.join(dir, 'data'),
        INGEST_CONFIG: path.join(dir, 'ingest.yaml'),
        INGEST_MAX_OBJECT_BYTES: '1000',
      },
      dir,
    );
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('does not follow a symlink inside a bucket that points outside it', async () => {
    fs.mkdirSync(bucketDir('landing'), { recursive: true });
    fs.symlinkSync(path.join(dir, 'secret.csv'), path.join(bucketDir('landing'), 'link.csv'));
    fs.symlinkSync(dir, path.join(bucketDir('landing'), 'linked-dir'));
    for (const name of ['link.csv', 'linked-dir/secret.csv']) {
      const answer = await emit('landing', name);
      expect(answer.outcome, name).to.equal('skipped');
    }
    const listing = await post(server.url, pushBody({ bucket: 'landing', prefix: '' }).body, {
      'content-type': 'application/json',
    });
    expect(JSON.stringify(listing.json)).to.not.match(/secret|link/);
    expect(fs.existsSync(path.join(bucketDir('landing'), '_quarantine'))).to.equal(false);
    const tables = fs.existsSync(path.join(dir, 'data', 'warehouse.duckdb'))
      ? await queryDuckDb(
          path.join(dir, 'data', 'warehouse.duckdb'),
          "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ingest'",
        )
      : [];
    expect(tables.map((t) => t.table_name)).to.not.include.members(['link', 'secret']);
  });

  const hostileTables = ['x`y', "x'y", 'x"y', 'x;drop', 'a.b', 'оrders', 'x y', 'x-y'];
  for (const table of hostileTables) {
    it(`rejects, never loads, an object whose table would be ${JSON.stringify(table)}`, async () => {
      put('landing', `t/${table}/a.csv`, 'a,b\n1,2\n');
      const answer = await emit('landing', `t/${table}/a.csv`);
      expect(answer.objects[0]?.outcome).to.equal('rejected');
      expect(answer.objects[0]?.reason).to.match(/is not a valid BigQuery table name/);
    });
  }

  it('holds the allowlist for events, Pub/Sub requests and prefixes', async () => {
    put('elsewhere', 'a.csv', 'a,b\n1,2\n');
    expect((await emit('elsewhere', 'a.csv')).objects[0]?.reason).to.equal(
      'bucket elsewhere is not in the allowlist',
    );
    for (const payload of [
      { bucket: 'elsewhere', name: 'a.csv' },
      { objects: [{ bucket: 'elsewhere', name: 'a.csv' }] },
      { bucket: 'elsewhere', prefix: '' },
    ]) {
      const request = pushBody(payload);
      const answer = (await post(server.url, request.body, request.headers))
        .json as unknown as Answer;
      expect(answer.outcome, JSON.stringify(payload)).to.equal('skipped');
      expect(answer.objects[0]?.reason).to.match(/not in the allowlist/);
    }
  });

  it('rejects an object over INGEST_MAX_OBJECT_BYTES', async () => {
    put('landing', 'huge.csv', `a,b\n${'1,2\n'.repeat(400)}`);
    const answer = await emit('landing', 'huge.csv');
    expect(answer.objects[0]?.reason).to.match(
      /over the limit of 1000 \(INGEST_MAX_OBJECT_BYTES\)/,
    );
  });

  it('answers 413 to a body announced over the limit, and the client receives it', async () => {
    for (const mib of [2, 33]) {
      const answer = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.alloc(mib * 1024 * 1024, 0x20),
      });
      expect(answer.status, `${mib} MiB`).to.equal(413);
      expect(await answer.json())
        .to.have.property('error')
        .that.matches(/over the limit of 1048576/);
    }
  });

  it('drops a refused body as it arrives instead of keeping it in memory', async () => {
    const pid = server.process.pid as number;
    const rss = () =>
      Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
    const before = rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 5);
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.alloc(60 * 1024 * 1024, 0x20),
        });
        expect(answer.status).to.equal(413);
        await answer.text();
      }
    } finally {
      clearInterval(sampler);
    }
    // Kept, each 60 MiB body would hold at least 60 MiB (twice that once joined); dropped, only what
    // the garbage collector has not yet reclaimed.
    expect((peak - before) / 2 ** 20, 'MiB the receiver grew by').to.be.below(100);
  });

  it('answers 400 to names that escape their bucket folder, for events and for messages', async () => {
    for (const name of ['../secret.csv', 'a/../../secret.csv', 'in/../../../secret.csv']) {
      const event = binaryEvent(STORAGE_TYPE, objectResource('landing', name, '1'));
      const message = pushBody({ bucket: 'landing', name });
      for (const request of [event, message]) {
        const answer = await post(server.url, request.body, request.headers);
        expect(answer.status, name).to.equal(400);
        expect(JSON.stringify(answer.json), name).to.include('escapes its bucket');
      }
    }
    expect(fs.readFileSync(path.join(dir, 'secret.csv'), 'utf8')).to.equal(
      'secret,value\nhunter2,1\n',
    );
  });

  it('skips names the bucket folder cannot hold (200, reason), for events and messages, touching nothing outside', async () => {
    for (const name of ['in/./secret.csv', 'a\u0000.csv']) {
      const event = binaryEvent(STORAGE_TYPE, objectResource('landing', name, '1'));
      const message = pushBody({ bucket: 'landing', name });
      for (const request of [event, message]) {
        const answer = await post(server.url, request.body, request.headers);
        expect(answer.status, name).to.equal(200);
        const [object] = (answer.json as unknown as Answer).objects;
        expect(object?.outcome, name).to.equal('skipped');
        expect(object?.reason, name).to.include('cannot be a file inside the local folder');
      }
    }
    expect(fs.readFileSync(path.join(dir, 'secret.csv'), 'utf8')).to.equal(
      'secret,value\nhunter2,1\n',
    );
    expect(['data', 'ingest.yaml', 'secret.csv']).to.include.members(fs.readdirSync(dir));
    const event = finalizedEvent({ bucket: 'landing', name: 'ok.csv', generation: '1', size: 1 });
    expect((await sendEvent(server.url, event)).status).to.equal(200);
  });
});
