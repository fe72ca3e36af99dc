/**
 * Outcome notifications: which object results are told, and the message each becomes. Pure: the
 * use case (src/ingest/notify.ts) publishes them and records what went out.
 */
import { createHash } from 'node:crypto';
import type { Config, NotifyOptions, NotifyOutcome } from '../config';
import type { ObjectResult } from './outcomes';
import { routeObject } from './routing';
import { INGEST_KEY } from '../stores/notified';

/** One message about one object's outcome. */
export interface Notification {
  topic: string;
  /** `ingest-key`: hex SHA-256 of outcome, job id, URI and generation. */
  key: string;
  /**
   * The object generation whose record says this went out (loaded and rejected outcomes): such a
   * message is sent until it has been recorded once, and then never again. Others go out each time.
   */
  recordOn?: { bucket: string; name: string; generation: string };
  /** Which result of the request it tells of. */
  index: number;
  json: NotificationBody;
  attributes: Record<string, string>;
}

export interface NotificationBody {
  uri: string;
  generation: string | null;
  outcome: NotifyOutcome;
  destination: string | null;
  rows: number | null;
  badRecords: number | null;
  jobId: string | null;
  reason: string | null;
  schemaChanges: string[];
  /** ISO 8601: when this request settled the outcome. */
  time: string;
  replacedRows?: number;
}

/** Where an object's outcomes are told: the route that takes it, else the top-level `notify`. */
export function notifyOptionsFor(uri: string, config: Config): NotifyOptions | undefined {
  const object = parseUri(uri);
  if (!object) return config.notify;
  const routing = routeObject(object, config);
  return routing.kind === 'skip' ? config.notify : routing.route.notify;
}

/**
 * The messages a request's results give: one per result whose outcome its `notify` lists. A
 * `duplicate` tells that job's `loaded` outcome again under the same key (an earlier delivery may
 * have loaded it and failed to publish), which goes out only while no record says it went out.
 */
export function toNotifications(
  results: readonly ObjectResult[],
  optionsOf: (result: ObjectResult) => NotifyOptions | undefined,
  now: Date,
): Notification[] {
  const jobSizes = new Map<string, number>();
  for (const r of results) if (r.jobId) jobSizes.set(r.jobId, (jobSizes.get(r.jobId) ?? 0) + 1);
  const notifications: Notification[] = [];
  results.forEach((result, index) => {
    const options = optionsOf(result);
    if (!options) return;
    const told = (outcome: NotifyOutcome, recovered = false) => {
      const jobObjects = Math.max(result.jobObjects ?? 1, jobSizes.get(result.jobId ?? '') ?? 1);
      const body = toBody(result, outcome, recovered, now);
      notifications.push(toNotification(options.topic, index, body, jobObjects));
    };
    const { outcome } = result;
    if (outcome === 'duplicate' && options.outcomes.includes('loaded')) told('loaded', true);
    if (options.outcomes.includes(outcome)) told(outcome);
  });
  return notifications;
}

function toBody(
  result: ObjectResult,
  outcome: NotifyOutcome,
  recovered: boolean,
  now: Date,
): NotificationBody {
  const body: NotificationBody = {
    uri: result.uri,
    generation: result.generation ?? null,
    outcome,
    destination: result.destination ?? null,
    rows: result.rows ?? null,
    badRecords: result.badRecords ?? (outcome === 'loaded' && !recovered ? 0 : null),
    jobId: result.jobId ?? null,
    reason: result.reason ?? null,
    schemaChanges: result.schemaChanges ?? [],
    time: now.toISOString(),
  };
  // A duplicate's reason says nothing of the load it tells again.
  if (recovered) body.reason = null;
  if (result.replacedRows !== undefined) body.replacedRows = result.replacedRows;
  return body;
}

function toNotification(
  topic: string,
  index: number,
  body: NotificationBody,
  jobObjects: number,
): Notification {
  const object = parseUri(body.uri);
  const key = ingestKey(body.outcome, body.jobId, body.uri, body.generation);
  const attributes: Record<string, string> = { outcome: body.outcome, [INGEST_KEY]: key };
  if (object) attributes.bucket = object.bucket;
  const table = body.destination ? parseTable(body.destination) : undefined;
  if (table) Object.assign(attributes, table);
  if (body.jobId) {
    attributes['job-id'] = body.jobId;
    attributes['job-objects'] = String(jobObjects);
    if (body.rows !== null) attributes['job-rows'] = String(body.rows);
  }
  const notification: Notification = { topic, key, index, json: body, attributes };
  const settled = body.outcome === 'loaded' || body.outcome === 'rejected';
  if (settled && object && body.generation !== null)
    notification.recordOn = { ...object, generation: body.generation };
  return notification;
}

/** hex SHA-256 of the outcome, the job id, the URI and the generation. */
export function ingestKey(
  outcome: NotifyOutcome,
  jobId: string | null,
  uri: string,
  generation: string | null,
): string {
  const key = JSON.stringify([outcome, jobId ?? '', uri, generation ?? '']);
  return createHash('sha256').update(key).digest('hex');
}

/** `gs://bucket/name` -> its parts; undefined for anything else. */
function parseUri(uri: string): { bucket: string; name: string } | undefined {
  const match = /^gs:\/\/([^/]+)\/(.+)$/s.exec(uri);
  return match ? { bucket: match[1] as string, name: match[2] as string } : undefined;
}

/** `[project.]dataset.table[$partition]` -> dataset and table (a project may hold a dot). */
function parseTable(destination: string): { dataset: string; table: string } | undefined {
  const parts = destination.replace(/\$.*$/, '').split('.');
  const [dataset, table] = parts.slice(-2);
  return parts.length >= 2 && dataset && table ? { dataset, table } : undefined;
}
