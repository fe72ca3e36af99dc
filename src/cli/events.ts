import { CloudEvent, Mode, emitterFor, type Message } from 'cloudevents';
import { randomUUID } from 'node:crypto';
import { EVENT_TYPES } from '../objects/request';
import type { StoredObject } from '../stores/store';
import { errorMessage } from '../core/errors';
import type { ObjectResult } from '../objects/outcomes';

export interface EventAnswer {
  status: number;
  body: unknown;
}

/** The `google.cloud.storage.object.v1.finalized` event Eventarc sends for a new object generation. */
export function finalizedEvent(object: StoredObject): CloudEvent<object> {
  const now = new Date().toISOString();
  return new CloudEvent({
    id: randomUUID(),
    type: EVENT_TYPES.finalized,
    source: `//storage.googleapis.com/projects/_/buckets/${object.bucket}`,
    subject: `objects/${object.name}`,
    time: now,
    datacontenttype: 'application/json',
    data: {
      kind: 'storage#object',
      id: `${object.bucket}/${object.name}/${object.generation}`,
      bucket: object.bucket,
      name: object.name,
      generation: object.generation,
      metageneration: '1',
      size: String(object.size),
      contentType: object.contentType ?? 'text/csv',
      timeCreated: now,
      updated: now,
    },
  });
}

/**
 * The `google.cloud.pubsub.topic.v1.messagePublished` event of a forced reprocess of one object
 * generation: the receiver loads it again, once per message id.
 */
export function forcedReloadEvent(object: StoredObject, project: string): CloudEvent<object> {
  const now = new Date().toISOString();
  const request = {
    bucket: object.bucket,
    name: object.name,
    generation: object.generation,
    force: true,
  };
  return new CloudEvent({
    id: randomUUID(),
    type: EVENT_TYPES.messagePublished,
    source: `//pubsub.googleapis.com/projects/${project}/topics/gcs-bq-ingest-emit`,
    time: now,
    datacontenttype: 'application/json',
    data: {
      message: {
        data: Buffer.from(JSON.stringify(request)).toString('base64'),
        messageId: randomUUID(),
        publishTime: now,
      },
      subscription: `projects/${project}/subscriptions/gcs-bq-ingest-emit`,
    },
  });
}

/** Sends a CloudEvent in binary mode, as Eventarc does, and returns the receiver's answer. */
export async function sendEvent(url: string, event: CloudEvent<object>): Promise<EventAnswer> {
  const transport = async (message: Message): Promise<EventAnswer> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: message.headers as Record<string, string>,
      body: message.body as string,
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: shown as it came
    }
    return { status: response.status, body };
  };
  return (await emitterFor(transport, { mode: Mode.BINARY })(event)) as EventAnswer;
}

interface AnswerBody {
  error?: string;
  objects?: ObjectResult[];
}

/** The top-level outcome of a 200 answer. */
export function answerOutcome(answer: EventAnswer): string | undefined {
  const body = answer.body as { outcome?: unknown } | null;
  return answer.status === 200 && typeof body?.outcome === 'string' ? body.outcome : undefined;
}

/** A request that got no answer: which URL, and why (connection refused, reset, ...). */
export function describeSendError(url: string, error: unknown): string {
  const cause =
    error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  const why = cause?.code ?? (cause instanceof Error ? cause.message : errorMessage(error));
  return `no answer from ${url} (${why})`;
}

/** One readable line per object outcome. */
export function describeAnswer(answer: EventAnswer): string[] {
  const body = (
    typeof answer.body === 'object' && answer.body !== null ? answer.body : {}
  ) as AnswerBody;
  if (answer.status !== 200 || !body.objects) {
    return [`HTTP ${answer.status}: ${body.error ?? JSON.stringify(answer.body)}`];
  }
  return body.objects.map((o) =>
    [
      o.outcome.padEnd(9),
      o.uri,
      o.destination && `-> ${o.destination}`,
      rowsText(o),
      o.schemaChanges?.length && `schema: ${o.schemaChanges.join(', ')}`,
      o.reason && `: ${o.reason}`,
    ]
      .filter(Boolean)
      .join(' '),
  );
}

/**
 * `(3 rows)`: the object's own rows where the answer has them, else the rows of its job, said to be
 * the job's when it loaded several objects: `(job of 32 objects, 96 rows)`.
 */
function rowsText(o: ObjectResult): string | undefined {
  let rows: string;
  if (o.objectRows !== undefined) rows = `${o.objectRows} rows`;
  else if (o.rows === undefined) return undefined;
  else if ((o.jobObjects ?? 1) > 1) rows = `job of ${o.jobObjects} objects, ${o.rows} rows`;
  else rows = `${o.rows} rows`;
  if (o.replacedRows !== undefined) rows += `, replaced ${o.replacedRows}`;
  return o.appendedAgain ? `(${rows}, appended again: forced)` : `(${rows})`;
}
