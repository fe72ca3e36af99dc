import { expect } from 'chai';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { ingestKey } from '../../src/objects/notify';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import {
  emulatorUnavailable,
  startPubSubEmulator,
  type PubSubEmulator,
} from '../helpers/pubsub-emulator';
import { post, type RunningServer } from '../helpers/server';
import { skipSuite } from '../helpers/skips';
import type { ObjectResource } from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';

interface Answer {
  outcome: string;
  objects: { uri: string; outcome: string; jobId?: string; generation?: string; notified?: true }[];
}

interface Received {
  attributes: Record<string, string>;
  json: Record<string, unknown>;
}

const configFor = (topic: string, batch = '{burst: 10}') => `
notify: {topic: projects/${PROJECT}/topics/${topic}}
routes:
  - match: "in/*.csv"
    dataset: ingest
    table: events
    batch: ${batch}
`;

/** Every message a subscription receives, acknowledged as it comes. */
function collect(subscription: Subscription) {
  const received: Received[] = [];
  subscription.on('message', (message: Message) => {
    received.push({
      attributes: { ...message.attributes },
      json: JSON.parse(message.data.toString('utf8')) as Record<string, unknown>,
    });
    message.ack();
  });
  subscription.on('error', () => undefined);
  return {
    received,
    /** Waits until `count` messages have come, then `settleMs` longer for any more. */
    async until(count: number, settleMs = 2000, ms = 60_000) {
      const deadline = Date.now() + ms;
      while (received.length < count) {
        if (Date.now() > deadline)
          throw new Error(`${received.length} of ${count} messages within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, settleMs));
      return received;
    },
    close: () => subscription.close(),
  };
}

async function emit(receiver: RunningServer, resource: ObjectResource, delivery = 0) {
  const event = binaryEvent(STORAGE_TYPE, resource, {
    'ce-id': `event-${resource.name}-${resource.generation}-${delivery}`,
    'ce-source': `//storage.googleapis.com/projects/_/buckets/${resource.bucket}`,
  });
  const answer = await post(receiver.url, event.body, event.headers);
  return { status: answer.status, body: answer.json as unknown as Answer, text: answer.text };
}

describe('end to end: outcome notifications through the Pub/Sub emulator (INGEST_BACKEND=gcp)', function () {
  this.timeout(180_000);
  let emulator: PubSubEmulator | undefined;
  let pubsub: PubSub;
  let cloud: CloudReceiver | undefined;
  const subscriptions: ReturnType<typeof collect>[] = [];
  const previousHost = process.env.PUBSUB_EMULATOR_HOST;
  let topics = 0;

  before(async function () {
    const missing = emulatorUnavailable();
    if (missing) {
      if (process.env.REQUIRE_GCLOUD === '1') throw new Error(`REQUIRE_GCLOUD=1 but ${missing}`);
      skipSuite(this, missing, 'set REQUIRE_GCLOUD=1 to fail instead');
    }
    emulator = await startPubSubEmulator(PROJECT);
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    pubsub = new PubSub({ projectId: PROJECT });
  });
  afterEach(async () => {
    await Promise.all(subscriptions.splice(0).map((s) => s.close()));
    await cloud?.stop();
    cloud = undefined;
  });
  after(async () => {
    await pubsub?.close();
    await emulator?.stop();
    if (previousHost === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = previousHost;
  });

  /** A new topic, a subscription to all of it and one to its rejections, and a receiver naming it. */
  async function start(batch?: string) {
    const name = `outcomes-${++topics}`;
    const [topic] = await pubsub.createTopic(name);
    const subscribe = async (sub: string, filter?: string) => {
      const [subscription] = await topic.createSubscription(sub, filter ? { filter } : {});
      const collected = collect(subscription);
      subscriptions.push(collected);
      return collected;
    };
    const all = await subscribe(`${name}-all`);
    const rejections = await subscribe(`${name}-rejected`, 'attributes.outcome = "rejected"');
    cloud = await startCloudReceiver(configFor(name, batch), {
      env: { PUBSUB_EMULATOR_HOST: emulator!.host },
    });
    return { name, topic, all, rejections, cloud, subscribe };
  }

  it('tells a loaded and a rejected object once each; a filter on the outcome gets only the rejection', async () => {
    const { all, rejections, cloud } = await start();
    const good = cloud.gcs.put(BUCKET, 'in/good.csv', 'id,name\n1,a\n2,b\n');
    const bad = cloud.gcs.put(BUCKET, 'in/bad.csv', 'id,name\n1,a\n2\n');
    const answers = await Promise.all([emit(cloud.receiver, good), emit(cloud.receiver, bad)]);
    const results = answers.map((a) => a.body.objects[0]);
    expect(results.map((r) => [r?.outcome, r?.notified])).to.deep.equal([
      ['loaded', true],
      ['rejected', true],
    ]);
    const messages = await all.until(2);
    expect(messages.map((m) => m.json.outcome).sort()).to.deep.equal(['loaded', 'rejected']);
    const loaded = messages.find((m) => m.json.outcome === 'loaded')!;
    expect(loaded.json).to.deep.include({
      uri: `gs://${BUCKET}/in/good.csv`,
      generation: good.generation,
      destination: `${PROJECT}.ingest.events`,
      rows: 2,
      badRecords: 0,
      jobId: results[0]?.jobId,
      reason: null,
    });
    expect(loaded.json.schemaChanges).to.be.an('array');
    expect(Date.parse(String(loaded.json.time))).to.be.closeTo(Date.now(), 60_000);
    expect(loaded.attributes).to.deep.equal({
      outcome: 'loaded',
      bucket: BUCKET,
      dataset: 'ingest',
      table: 'events',
      'ingest-key': ingestKey(
        'loaded',
        results[0]!.jobId!,
        loaded.json.uri as string,
        good.generation,
      ),
      'job-id': results[0]!.jobId!,
      'job-objects': '1',
      'job-rows': '2',
    });
    const rejected = messages.find((m) => m.json.outcome === 'rejected')!;
    expect(rejected.json.reason).to.include('contains only 1 columns');
    expect(rejected.attributes).to.include({
      outcome: 'rejected',
      bucket: BUCKET,
      table: 'events',
    });
    // The emulator (0.8.20) keeps a subscription's filter but delivers every message to it (checked:
    // it does); Pub/Sub delivers only those that match. What `attributes.outcome = "rejected"` matches:
    const filtered = (await rejections.until(1)).filter((m) => m.attributes.outcome === 'rejected');
    expect(filtered.map((m) => m.json.uri)).to.deep.equal([`gs://${BUCKET}/in/bad.csv`]);
    // Each object carries the record that its outcome went out.
    for (const name of ['in/good.csv', 'in/bad.csv'])
      expect(cloud.gcs.metadataOf(BUCKET, name)).to.have.property('ingest-notified');
  });

  it('a plain duplicate delivery after the notification went out publishes nothing', async () => {
    const { all, cloud } = await start();
    const good = cloud.gcs.put(BUCKET, 'in/again.csv', 'id,name\n1,a\n');
    expect((await emit(cloud.receiver, good)).body.objects[0]?.outcome).to.equal('loaded');
    await all.until(1, 0);
    const again = await emit(cloud.receiver, good, 1);
    expect(again.body.objects[0]?.outcome).to.equal('duplicate');
    expect(again.body.objects[0]).not.to.have.property('notified');
    expect(await all.until(1, 3000)).to.have.length(1);
  });

  it('a publish that fails answers 503 and loads nothing again; the redelivery publishes once, with the same ingest-key', async () => {
    const { name, topic, cloud, subscribe } = await start();
    await topic.delete(); // every publish now fails (NOT_FOUND)
    const good = cloud.gcs.put(BUCKET, 'in/late.csv', 'id,name\n1,a\n');
    const failed = await emit(cloud.receiver, good);
    expect(failed.status, failed.text).to.equal(503);
    expect(failed.body).to.deep.include({ retryable: true });
    expect(cloud.bq.inserts()).to.have.length(1);

    await pubsub.createTopic(name);
    const after = await subscribe(`${name}-after`);
    const redelivered = await emit(cloud.receiver, good, 1);
    expect(redelivered.status, redelivered.text).to.equal(200);
    const result = redelivered.body.objects[0]!;
    expect(result).to.include({ outcome: 'duplicate', notified: true });
    const [message, ...more] = await after.until(1);
    expect(more).to.deep.equal([]);
    expect(message?.json.outcome).to.equal('loaded');
    const key = ingestKey('loaded', result.jobId!, result.uri, good.generation);
    expect(message?.attributes['ingest-key']).to.equal(key);

    const third = await emit(cloud.receiver, good, 2);
    expect(third.body.objects[0]).not.to.have.property('notified');
    expect(await after.until(1, 2000)).to.have.length(1);
    expect(cloud.bq.inserts()).to.have.length(1);
  });

  it('200 objects coalesced into a few jobs: 200 messages, and one job summary per job', async () => {
    // One job at once, then one every 3 s: the objects that wait share the next job.
    const { all, cloud } = await start(`{jobsPerDay: ${86_400 / 3}, burst: 1}`);
    const objects = Array.from({ length: 200 }, (_, i) =>
      cloud.gcs.put(BUCKET, `in/${String(i).padStart(3, '0')}.csv`, `id,name\n${i},x\n`),
    );
    const answers = await Promise.all(objects.map((o) => emit(cloud.receiver, o)));
    expect(answers.map((a) => a.body.objects[0]?.outcome)).to.deep.equal(
      objects.map(() => 'loaded'),
    );
    const messages = await all.until(200);
    expect(messages).to.have.length(200);
    expect(new Set(messages.map((m) => m.attributes['ingest-key'])).size).to.equal(200);
    const jobs = new Map<string, Received[]>();
    for (const m of messages) {
      const id = m.attributes['job-id']!;
      jobs.set(id, [...(jobs.get(id) ?? []), m]);
    }
    expect(jobs.size).to.be.within(2, 20);
    expect(jobs.size).to.equal(cloud.bq.inserts().length);
    for (const [id, members] of jobs) {
      const summaries = new Set(
        members.map((m) => `${m.attributes['job-objects']}/${m.attributes['job-rows']}`),
      );
      expect([...summaries], id).to.deep.equal([`${members.length}/${members.length}`]);
    }
  });
});

describe('end to end: outcome notifications while the Pub/Sub emulator is down', function () {
  this.timeout(180_000);
  let emulator: PubSubEmulator | undefined;
  let cloud: CloudReceiver | undefined;
  let pubsub: PubSub | undefined;
  let subscription: ReturnType<typeof collect> | undefined;
  const previousHost = process.env.PUBSUB_EMULATOR_HOST;

  before(function () {
    const missing = emulatorUnavailable();
    if (missing) {
      if (process.env.REQUIRE_GCLOUD === '1') throw new Error(`REQUIRE_GCLOUD=1 but ${missing}`);
      skipSuite(this, missing, 'set REQUIRE_GCLOUD=1 to fail instead');
    }
  });
  after(async () => {
    await subscription?.close();
    await pubsub?.close();
    await cloud?.stop();
    await emulator?.stop();
    if (previousHost === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = previousHost;
  });

  it('answers 503 within its budget and loads once; after recovery the redelivery publishes once', async () => {
    emulator = await startPubSubEmulator(PROJECT);
    cloud = await startCloudReceiver(configFor('outcomes'), {
      env: { PUBSUB_EMULATOR_HOST: emulator.host, INGEST_WAIT_SECONDS: '8' },
    });
    await emulator.stop();
    const object = cloud.gcs.put(BUCKET, 'in/down.csv', 'id,name\n1,a\n');
    const started = Date.now();
    const failed = await emit(cloud.receiver, object);
    expect(failed.status, failed.text).to.equal(503);
    expect(Date.now() - started).to.be.below(20_000);
    expect(cloud.bq.inserts()).to.have.length(1);

    // Recovery: the emulator back (on a new port, so a receiver that knows it).
    emulator = await startPubSubEmulator(PROJECT);
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    pubsub = new PubSub({ projectId: PROJECT });
    const [topic] = await pubsub.createTopic('outcomes');
    subscription = collect((await topic.createSubscription('outcomes-all'))[0]);
    const recovered = await cloud.startAnother({ PUBSUB_EMULATOR_HOST: emulator.host });
    const redelivered = await emit(recovered, object, 1);
    expect(redelivered.body.objects[0]).to.include({ outcome: 'duplicate', notified: true });
    const [message, ...more] = await subscription.until(1);
    expect(more).to.deep.equal([]);
    const { jobId, uri } = redelivered.body.objects[0]!;
    expect(message?.attributes['ingest-key']).to.equal(
      ingestKey('loaded', jobId!, uri, object.generation),
    );
    expect(cloud.bq.inserts()).to.have.length(1);
  });
});
