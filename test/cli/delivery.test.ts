import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDelivery, type DeliveryOptions } from '../../src/cli/delivery';
import type { StoredObject } from '../../src/stores/store';

const object: StoredObject = { bucket: 'demo', name: 'a.csv', generation: '1', size: 4 };
const loaded = {
  outcome: 'loaded',
  objects: [{ uri: 'gs://demo/a.csv', outcome: 'loaded', destination: 'p.ingest.a', rows: 1 }],
};
const skipped = {
  outcome: 'skipped',
  objects: [{ uri: 'gs://demo/a.csv', outcome: 'skipped', reason: 'no route matches' }],
};

/** A receiver that answers each POST with the next of `answers` (status, body). */
async function fakeReceiver(answers: [number, object][]) {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    received.push(String(req.headers['ce-type']));
    const [status, body] = answers.shift() ?? [500, { error: 'no more answers' }];
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, received, close: () => new Promise((r) => server.close(r)) };
}

describe('local Eventarc delivery', () => {
  const policy = { attempts: 3, firstDelayMs: 10, maxDelayMs: 20 };
  let lines: string[];
  const options = (url: string, over: Partial<DeliveryOptions> = {}): DeliveryOptions => ({
    url,
    restat: async (o) => o,
    resendHint: () => 'gcs-bq-ingest emit local-data/buckets/demo/a.csv',
    print: (line) => lines.push(line),
    policy,
    ...over,
  });
  beforeEach(() => (lines = []));

  it('redelivers a 503 and prints one line per retry', async () => {
    const receiver = await fakeReceiver([
      [503, { error: 'busy', retryable: true }],
      [200, loaded],
    ]);
    try {
      const outcome = await createDelivery(options(receiver.url)).send(object);
      expect(outcome).to.equal('loaded');
      expect(receiver.received).to.deep.equal([
        'google.cloud.storage.object.v1.finalized',
        'google.cloud.storage.object.v1.finalized',
      ]);
      expect(lines).to.deep.equal([
        'retry     gs://demo/a.csv#1 in 0.01 s (attempt 2 of 3): HTTP 503: busy',
        'loaded    gs://demo/a.csv -> p.ingest.a (1 rows)',
      ]);
    } finally {
      await receiver.close();
    }
  });

  it('does not redeliver a 400', async () => {
    const receiver = await fakeReceiver([[400, { error: 'data.name: is empty' }]]);
    try {
      expect(await createDelivery(options(receiver.url)).send(object)).to.equal(undefined);
      expect(receiver.received).to.have.length(1);
      expect(lines).to.deep.equal(['HTTP 400: data.name: is empty']);
    } finally {
      await receiver.close();
    }
  });

  it('gives up after the last attempt, saying how to send it again', async () => {
    const receiver = await fakeReceiver([
      [503, { error: 'busy' }],
      [503, { error: 'busy' }],
      [503, { error: 'busy' }],
    ]);
    try {
      await createDelivery(options(receiver.url)).send(object);
      expect(receiver.received).to.have.length(3);
      expect(lines.at(-1)).to.equal(
        'gave up   gs://demo/a.csv#1 after 3 attempts: HTTP 503: busy; send it again with `gcs-bq-ingest emit local-data/buckets/demo/a.csv` (or restart dev)',
      );
    } finally {
      await receiver.close();
    }
  });

  it('redelivers when nothing answers, naming the URL', async () => {
    const receiver = await fakeReceiver([]);
    await receiver.close();
    await createDelivery(options(receiver.url)).send(object);
    expect(lines[0]).to.match(
      new RegExp(
        `^retry .* \\(attempt 2 of 3\\): no answer from ${receiver.url} \\(ECONNREFUSED\\)$`,
      ),
    );
  });

  for (const [what, now, line] of [
    ['deleted', undefined, 'dropped   gs://demo/a.csv#1: deleted before it could be sent again'],
    [
      'replaced',
      { ...object, generation: '2' },
      'dropped   gs://demo/a.csv#1: replaced by generation 2, sent on its own',
    ],
  ] as const) {
    it(`drops a retry for an object ${what} since`, async () => {
      const receiver = await fakeReceiver([[503, { error: 'busy' }]]);
      try {
        const delivery = createDelivery(options(receiver.url, { restat: async () => now }));
        expect(await delivery.send(object)).to.equal(undefined);
        expect(receiver.received).to.have.length(1);
        expect(lines.at(-1)).to.equal(line);
      } finally {
        await receiver.close();
      }
    });
  }

  it('leaves skipped outcomes unprinted when asked', async () => {
    const receiver = await fakeReceiver([[200, skipped]]);
    try {
      const delivery = createDelivery(options(receiver.url));
      expect(await delivery.send(object, { quietSkip: true })).to.equal('skipped');
      expect(lines).to.deep.equal([]);
    } finally {
      await receiver.close();
    }
  });

  it('once stopped, does not redeliver and reports what is left unsent', async () => {
    const receiver = await fakeReceiver([[503, { error: 'busy' }]]);
    try {
      const delivery = createDelivery(
        options(receiver.url, {
          policy: { attempts: 3, firstDelayMs: 60_000, maxDelayMs: 60_000 },
        }),
      );
      const sending = delivery.send(object);
      while (lines.length === 0) await new Promise((r) => setTimeout(r, 5));
      expect(await delivery.stop()).to.deep.equal(['gs://demo/a.csv']);
      expect(await sending).to.equal(undefined);
      expect(receiver.received).to.have.length(1);
      expect(await delivery.send({ ...object, name: 'b.csv' })).to.equal(undefined);
      expect(receiver.received).to.have.length(1);
    } finally {
      await receiver.close();
    }
  });

  it('answered 503 while stopping: counted as unsent, not printed', async () => {
    let answer: () => void = () => undefined;
    const server = http.createServer((req, res) => {
      req.resume();
      answer = () => res.writeHead(503).end('{"error":"shutting down"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const delivery = createDelivery(options(url));
      const sending = delivery.send(object);
      await new Promise((r) => setTimeout(r, 100));
      const stopped = delivery.stop();
      answer();
      expect(await stopped).to.deep.equal(['gs://demo/a.csv']);
      expect(await sending).to.equal(undefined);
      expect(lines).to.deep.equal([]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
