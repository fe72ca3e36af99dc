import { ownMetadataValue, readOwnMetadata } from './own-metadata';
import type { StoredObject } from './store';

/** The message attribute a subscriber dedupes on, and under which a message is recorded. */
export const INGEST_KEY = 'ingest-key';

/** One object generation a message told of, and the message's `ingest-key`. */
export interface NotifiedObject {
  object: Pick<StoredObject, 'bucket' | 'name' | 'generation'>;
  key: string;
}

/** A message that went out, as it is recorded. */
export interface SentMessage {
  topic: string;
  /** The Pub/Sub message id, when it was published. */
  messageId?: string;
  attributes: Record<string, string>;
  data: object;
  /** Present when the record must remember it: then it is never sent again for this object. */
  recordOn?: NotifiedObject;
}

/**
 * Where it is recorded that an outcome's message went out, so that a later delivery of the same
 * object does not send it again: on the object in Cloud Storage (custom metadata), in
 * `notifications.jsonl` locally. A message that went out but was not recorded (the process died
 * between the two) is sent again: delivery is at least once.
 */
export interface NotificationRecord {
  /** Whether each message was recorded as sent, in the order asked. */
  sent(items: NotifiedObject[]): Promise<boolean[]>;
  /** Records the messages that went out. */
  record(messages: SentMessage[]): Promise<void>;
}

/** The custom metadata key on a Cloud Storage object that names the last message sent about it. */
export const NOTIFIED_METADATA_KEY = 'ingest-notified';

/** The value of `ingest-notified`: the key and when, for this generation only (copies carry it along). */
export function formatNotified({ object, key }: NotifiedObject, at: Date): string {
  return ownMetadataValue(asStored(object), { key, at: at.toISOString() });
}

/** The key a value of `ingest-notified` holds for this very generation, else undefined. */
export function parseNotified(
  value: string | undefined,
  object: NotifiedObject['object'],
): string | undefined {
  const fields = readOwnMetadata(asStored(object), value);
  return typeof fields?.key === 'string' ? fields.key : undefined;
}

function asStored(object: NotifiedObject['object']): StoredObject {
  return { ...object, size: 0 };
}
