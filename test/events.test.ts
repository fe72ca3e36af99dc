import { expect } from 'chai';
import { RequestError } from '../src/core/errors';
import { parseRequest } from '../src/receiver/events';
import type { IngestRequest } from '../src/objects/request';
import {
  PUBSUB_TYPE,
  STORAGE_TYPE,
  binaryEvent,
  objectResource,
  pubsubData,
  pushBody,
  structuredEvent,
  type RawRequest,
} from './helpers/events';

const notification = (eventType: string) =>
  pubsubData(objectResource('landing', 'in/a.csv', '7', '42'), {
    eventType,
    bucketId: 'landing',
    objectId: 'in/a.csv',
    objectGeneration: '7',
    payloadFormat: 'JSON_API_V1',
  });

describe('parseRequest', () => {
  const valid: { name: string; request: RawRequest; expected: Partial<IngestRequest> }[] = [
    {
      name: 'finalized, binary mode, string generation and size',
      request: binaryEvent(
        STORAGE_TYPE,
        objectResource('landing', 'in/a.csv', '1700000000000001', '42'),
      ),
      expected: {
        objects: [
          { bucket: 'landing', name: 'in/a.csv', generation: '1700000000000001', size: 42 },
        ],
        force: false,
      },
    },
    {
      name: 'finalized, binary mode, numeric generation and size',
      request: binaryEvent(STORAGE_TYPE, objectResource('landing', 'a.csv', 17, 0)),
      expected: { objects: [{ bucket: 'landing', name: 'a.csv', generation: '17', size: 0 }] },
    },
    {
      name: 'finalized, structured mode',
      request: structuredEvent(STORAGE_TYPE, objectResource('landing', 'x/y.csv.gz', '5')),
      expected: { objects: [{ bucket: 'landing', name: 'x/y.csv.gz', generation: '5', size: 10 }] },
    },
    {
      name: 'messagePublished: one object',
      request: binaryEvent(PUBSUB_TYPE, pubsubData({ bucket: 'landing', name: 'a.csv' })),
      expected: {
        objects: [{ bucket: 'landing', name: 'a.csv' }],
        force: false,
        messageId: '1001',
      },
    },
    {
      name: 'messagePublished: one object with generation and force',
      request: binaryEvent(
        PUBSUB_TYPE,
        pubsubData({ bucket: 'landing', name: 'a.csv', generation: 9, force: true }, {}, '77'),
      ),
      expected: {
        objects: [{ bucket: 'landing', name: 'a.csv', generation: '9' }],
        force: true,
        forceId: '77',
      },
    },
    {
      name: 'messagePublished: prefix',
      request: structuredEvent(
        PUBSUB_TYPE,
        pubsubData({ bucket: 'landing', prefix: 'sales/2026/' }),
      ),
      expected: { objects: [], prefix: { bucket: 'landing', prefix: 'sales/2026/' } },
    },
    {
      name: 'messagePublished: objects list',
      request: binaryEvent(
        PUBSUB_TYPE,
        pubsubData({
          objects: [
            { bucket: 'landing', name: 'a.csv' },
            { bucket: 'other', name: 'd.csv' },
          ],
        }),
      ),
      expected: {
        objects: [
          { bucket: 'landing', name: 'a.csv' },
          { bucket: 'other', name: 'd.csv' },
        ],
      },
    },
    {
      name: 'messagePublished: Cloud Storage notification',
      request: binaryEvent(PUBSUB_TYPE, notification('OBJECT_FINALIZE')),
      expected: { objects: [{ bucket: 'landing', name: 'in/a.csv', generation: '7', size: 42 }] },
    },
    {
      name: 'messagePublished: a delete notification is ignored with a reason',
      request: binaryEvent(PUBSUB_TYPE, notification('OBJECT_DELETE')),
      expected: {
        objects: [],
        ignored: [
          {
            ref: { bucket: 'landing', name: 'in/a.csv', generation: '7', size: 42 },
            reason: 'notification OBJECT_DELETE is not a finalize',
          },
        ],
      },
    },
    {
      name: 'plain push body',
      request: pushBody({ bucket: 'landing', name: 'a.csv', force: true }, undefined, '55'),
      expected: { objects: [{ bucket: 'landing', name: 'a.csv' }], force: true, forceId: '55' },
    },
    {
      name: 'plain push body: forced fan-out keeps the id of the request it came from',
      request: pushBody(
        { bucket: 'landing', name: 'a.csv', force: true },
        { ingestForceId: '1' },
        '56',
      ),
      expected: { force: true, forceId: '1', messageId: '56' },
    },
  ];
  for (const { name, request, expected } of valid) {
    it(name, () => {
      const parsed = parseRequest(request);
      expect(parsed).to.deep.include(expected);
    });
  }

  const invalid: { name: string; request: RawRequest; error: RegExp }[] = [
    { name: 'empty body', request: { headers: {}, body: '' }, error: /^body: empty/ },
    {
      name: 'JSON that is neither',
      request: { headers: {}, body: '{"a":1}' },
      error: /not a CloudEvent/,
    },
    {
      name: 'unsupported event type',
      request: binaryEvent('com.example.other', {}),
      error: /^type: unsupported event type "com.example.other"/,
    },
    {
      name: 'binary event without ce-type',
      request: { headers: { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': 's' }, body: '{}' },
      error: /^ce-type: missing/,
    },
    {
      name: 'structured event without id',
      request: {
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify({ specversion: '1.0', source: 's', type: STORAGE_TYPE }),
      },
      error: /^id: missing/,
    },
    {
      name: 'specversion 0.3',
      request: binaryEvent(STORAGE_TYPE, objectResource('landing', 'a.csv', 1), {
        'ce-specversion': '0.3',
      }),
      error: /^specversion/,
    },
    {
      name: 'finalized without bucket',
      request: binaryEvent(STORAGE_TYPE, { name: 'a.csv', generation: '1' }),
      error: /^data\.bucket: required/,
    },
    {
      name: 'finalized without generation',
      request: binaryEvent(STORAGE_TYPE, { bucket: 'landing', name: 'a.csv' }),
      error: /^data\.generation: required/,
    },
    {
      name: 'generation not a number',
      request: binaryEvent(STORAGE_TYPE, objectResource('landing', 'a.csv', 'abc')),
      error: /^data\.generation: must be a positive integer/,
    },
    {
      name: 'negative size',
      request: binaryEvent(STORAGE_TYPE, objectResource('landing', 'a.csv', '1', -1)),
      error: /^data\.size/,
    },
    {
      name: 'invalid bucket',
      request: binaryEvent(STORAGE_TYPE, objectResource('Bad Bucket', 'a.csv', '1')),
      error: /^data\.bucket: "Bad Bucket" is not a valid bucket name/,
    },
    ...[
      ['an empty name', ''],
      ['a name over 1,024 bytes', `${'a'.repeat(1021)}.csv`],
      ['a line feed in a name', 'a\nb.csv'],
      ['a carriage return in a name', 'a\rb.csv'],
      ['the name ..', '..'],
      ['a name under .well-known/acme-challenge/', '.well-known/acme-challenge/a.csv'],
    ].map(([name = '', objectName = '']) => ({
      name: `${name} (Cloud Storage refuses it)`,
      request: binaryEvent(STORAGE_TYPE, objectResource('landing', objectName, '1')),
      error: /^data\.name: object name /,
    })),
    {
      name: 'message data not base64',
      request: pushBody('x'),
      error: /message\.data: not valid JSON/,
    },
    {
      name: 'message data not JSON',
      request: { headers: {}, body: JSON.stringify({ message: { data: '!!!', messageId: '1' } }) },
      error: /^body\.message\.data: not base64/,
    },
    {
      name: 'message with unknown field',
      request: pushBody({ bucket: 'landing', name: 'a.csv', forse: true }),
      error: /^body\.message\.data: /,
    },
    {
      name: 'message that is an array',
      request: pushBody([1, 2]),
      error: /expected a JSON object/,
    },
    {
      name: 'objects list with a bad name',
      request: pushBody({ objects: [{ bucket: 'landing', name: 'a\n.csv' }] }),
      error: /objects\[0\]\.name/,
    },
    {
      name: 'push body without message.data structure',
      request: { headers: {}, body: '{"message": 5}' },
      error: /^body\.message/,
    },
    {
      name: 'notification without objectGeneration',
      request: pushBody('{}', {
        eventType: 'OBJECT_FINALIZE',
        bucketId: 'landing',
        objectId: 'a.csv',
      }),
      error: /objectGeneration: required/,
    },
  ];
  // Cloud Storage allows every one of these (https://cloud.google.com/storage/docs/objects#naming).
  const allowed = [
    'in/a%2Fb.csv',
    'in/back\\slash.csv',
    'in/tab\there.csv',
    '/rooted.csv',
    'in//double.csv',
    'in/../up.csv',
    '%2e%2e/a.csv',
    'C:/drive.csv',
    'a\u0000.csv',
    `in/${'a'.repeat(1013)}.csv`,
  ];
  for (const objectName of allowed) {
    it(`accepts ${JSON.stringify(objectName)} on events and messages alike, as Cloud Storage does`, () => {
      const event = binaryEvent(STORAGE_TYPE, objectResource('landing', objectName, '1'));
      expect(parseRequest(event).objects.map((o) => o.name)).to.deep.equal([objectName]);
      const message = pushBody({ bucket: 'landing', name: objectName });
      expect(parseRequest(message).objects.map((o) => o.name)).to.deep.equal([objectName]);
    });
  }

  for (const { name, request, error } of invalid) {
    it(`rejects ${name}`, () => {
      expect(() => parseRequest(request)).to.throw(RequestError, error);
    });
  }
});
