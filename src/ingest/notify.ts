import type { Config } from '../config';
import { TransientError, errorMessage } from '../core/errors';
import { withTimeout } from '../core/timeout';
import { notifyOptionsFor, toNotifications, type Notification } from '../objects/notify';
import type { ObjectResult } from '../objects/outcomes';
import type { NotificationRecord, SentMessage } from '../stores/notified';
import type { Services } from './services';

// How long publishing may take, retries included: the budget left, within these bounds.
const MAX_PUBLISH_MS = 30_000;
const MIN_PUBLISH_MS = 2_000;

/**
 * Tells the outcomes `notify` asks for, before the request answers: publishes one message per
 * object outcome (on Google Cloud, or locally to PUBSUB_EMULATOR_HOST), then records what went out
 * (locally, as lines of notifications.jsonl). A loaded or rejected outcome already recorded goes out
 * no more. A publish that fails is a TransientError (503): nothing is loaded again, since the
 * redelivery finds the job done and tells its outcome then, under the same `ingest-key`.
 * Resolves with the indexes of the results that were told.
 */
export async function notifyOutcomes(
  results: readonly ObjectResult[],
  services: Pick<Services, 'config' | 'publisher' | 'notified'>,
  deadline: number,
): Promise<Set<number>> {
  const { config, notified } = services;
  const all = toNotifications(results, (r) => notifyOptionsFor(r.uri, config), new Date());
  if (all.length === 0) return new Set();
  const due = await unsent(all, notified);
  const ids = publishes(config) ? await publish(due, services, deadline) : [];
  await notified?.record(due.map((n, i) => toSent(n, ids[i])));
  return new Set(due.map((n) => n.index));
}

/** Whether messages go to Pub/Sub: always on Google Cloud; locally only to an emulator. */
export function publishes(config: Pick<Config, 'backend' | 'pubsubEmulatorHost'>): boolean {
  return config.backend === 'gcp' || config.pubsubEmulatorHost !== undefined;
}

/** The notifications not recorded as sent: those the record keeps, unless it has them. */
async function unsent(
  all: Notification[],
  record: NotificationRecord | undefined,
): Promise<Notification[]> {
  const kept = all.filter((n) => n.recordOn !== undefined);
  if (!record || kept.length === 0) return all;
  const sent = await record.sent(kept.map((n) => ({ object: n.recordOn!, key: n.key })));
  const done = new Set(kept.filter((_, i) => sent[i]));
  return all.filter((n) => !done.has(n));
}

/** Publishes each topic's messages; the message ids in the order of `due`. */
async function publish(
  due: Notification[],
  { publisher }: Pick<Services, 'publisher'>,
  deadline: number,
): Promise<string[]> {
  const ids: string[] = new Array(due.length);
  const topics = [...new Set(due.map((n) => n.topic))];
  const timeoutMs = Math.min(MAX_PUBLISH_MS, Math.max(MIN_PUBLISH_MS, deadline - Date.now()));
  await Promise.all(
    topics.map(async (topic) => {
      const mine = due.map((n, i) => ({ n, i })).filter(({ n }) => n.topic === topic);
      const messages = mine.map(({ n }) => ({ json: n.json, attributes: n.attributes }));
      const failed = `${messages.length} outcome notification(s) not published`;
      const published = await withTimeout(
        publisher.publish(topic, messages, { timeoutMs }),
        timeoutMs + 1000,
        `${failed}: no answer within ${timeoutMs} ms`,
      ).catch((error: unknown) => {
        throw new TransientError(
          `${failed}: ${errorMessage(error)}; its redelivery publishes them again (nothing is loaded twice)`,
          { cause: error },
        );
      });
      mine.forEach(({ i }, j) => (ids[i] = published[j] as string));
    }),
  );
  return ids;
}

function toSent(n: Notification, messageId: string | undefined): SentMessage {
  const sent: SentMessage = { topic: n.topic, attributes: n.attributes, data: n.json };
  if (messageId !== undefined) sent.messageId = messageId;
  if (n.recordOn) sent.recordOn = { object: n.recordOn, key: n.key };
  return sent;
}
