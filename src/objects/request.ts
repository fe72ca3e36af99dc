/** What an event or a reprocess request asks for, whatever transport it came by. */

export const EVENT_TYPES = {
  finalized: 'google.cloud.storage.object.v1.finalized',
  messagePublished: 'google.cloud.pubsub.topic.v1.messagePublished',
} as const;

/** Set on messages fanned out from a forced prefix request, so that its redelivery does not load again. */
export const FORCE_ID_ATTRIBUTE = 'ingestForceId';

export interface ObjectRef {
  bucket: string;
  name: string;
  /** Absent when a reprocess request names no generation: the current one is used. */
  generation?: string;
  size?: number;
}

export interface IngestRequest {
  /** Objects named one by one. */
  objects: ObjectRef[];
  /** A prefix to expand by listing. */
  prefix?: { bucket: string; prefix: string };
  /** Objects the request names but asks nothing of (e.g. a delete notification). */
  ignored: { ref: ObjectRef; reason: string }[];
  force: boolean;
  /** The Pub/Sub message id, when the request came through Pub/Sub. */
  messageId?: string;
  /** What makes a forced reprocess unique: the message id, or the id of the request it was fanned out from. */
  forceId?: string;
  /** The CloudEvent id, for logs. */
  eventId?: string;
}
