/** Builders for the requests Eventarc and Pub/Sub send, shared by the tests. */
export const STORAGE_TYPE = 'google.cloud.storage.object.v1.finalized';
export const PUBSUB_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

export interface RawRequest {
  headers: Record<string, string>;
  body: string;
}

export function objectResource(
  bucket: string,
  name: string,
  generation: string | number,
  size: string | number = '10',
) {
  return {
    kind: 'storage#object',
    bucket,
    name,
    generation,
    size,
    contentType: 'text/csv',
    metageneration: '1',
  };
}

export function binaryEvent(
  type: string,
  data: unknown,
  extra: Record<string, string> = {},
): RawRequest {
  return {
    headers: {
      'ce-specversion': '1.0',
      'ce-id': 'event-1',
      'ce-source': '//storage.googleapis.com/projects/_/buckets/b',
      'ce-type': type,
      'content-type': 'application/json',
      ...extra,
    },
    body: JSON.stringify(data),
  };
}

export function structuredEvent(type: string, data: unknown): RawRequest {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      id: 'event-2',
      source: '//pubsub.googleapis.com/x',
      type,
      data,
    }),
  };
}

export function pubsubData(
  payload: unknown,
  attributes?: Record<string, string>,
  messageId = '1001',
) {
  const data = Buffer.from(
    typeof payload === 'string' ? payload : JSON.stringify(payload),
  ).toString('base64');
  return {
    message: { data, attributes, messageId, publishTime: '2026-11-28T00:00:00Z' },
    subscription: 'projects/p/subscriptions/s',
  };
}

export function pushBody(
  payload: unknown,
  attributes?: Record<string, string>,
  messageId = '1001',
): RawRequest {
  return {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(pubsubData(payload, attributes, messageId)),
  };
}
