import { HTTP, type CloudEvent } from 'cloudevents';
import { z } from 'zod/v3';
import { RequestError, errorMessage } from '../core/errors';
import { checkBucket, checkName, checkPrefix } from '../objects/object-names';
import {
  EVENT_TYPES,
  FORCE_ID_ATTRIBUTE,
  type IngestRequest,
  type ObjectRef,
} from '../objects/request';

export interface HttpInput {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | string;
}

/** A CloudEvent (binary or structured) or a plain Pub/Sub push body, decoded into what to ingest. */
export function parseRequest(input: HttpInput): IngestRequest {
  const body = typeof input.body === 'string' ? input.body : input.body.toString('utf8');
  const headers = lowerCaseHeaders(input.headers);
  if (isCloudEventRequest(headers)) return parseCloudEvent(toCloudEvent(headers, body));
  if (body.trim() === '')
    throw new RequestError('body: empty; expected a CloudEvent or a Pub/Sub push body');
  const json = parseJson(body, 'body');
  if (isPushBody(json)) return parsePubSub(json, 'body');
  throw new RequestError(
    'body: not a CloudEvent (no ce-specversion header or application/cloudevents+json body) and not a Pub/Sub push body (no "message")',
  );
}

function isCloudEventRequest(headers: Record<string, string>): boolean {
  return (
    headers['ce-specversion'] !== undefined ||
    (headers['content-type'] ?? '').toLowerCase().startsWith('application/cloudevents+json')
  );
}

function isPushBody(json: unknown): json is { message: unknown } {
  return typeof json === 'object' && json !== null && !Array.isArray(json) && 'message' in json;
}

interface ReceivedEvent {
  specversion: string;
  type: string;
  id: string;
  data: unknown;
}

function toCloudEvent(headers: Record<string, string>, body: string): ReceivedEvent {
  const structured = headers['ce-specversion'] === undefined;
  if (structured) {
    const json = parseJson(body, 'body');
    for (const attribute of ['specversion', 'id', 'source', 'type']) {
      const value = (json as Record<string, unknown> | null)?.[attribute];
      if (typeof value !== 'string' || value === '') {
        throw new RequestError(`${attribute}: missing from the structured CloudEvent`);
      }
    }
  } else {
    for (const attribute of ['ce-id', 'ce-source', 'ce-type']) {
      if (!headers[attribute])
        throw new RequestError(`${attribute}: missing header of the binary CloudEvent`);
    }
  }
  try {
    // A binary event's data is parsed below rather than by the SDK, whose JSON parser builds two
    // errors (stack traces and all) on every call: the slowest step of a request.
    const event = HTTP.toEvent<unknown>({
      headers,
      body: structured ? body : undefined,
    }) as CloudEvent<unknown>;
    const data = structured ? event.data : body === '' ? undefined : body;
    return { specversion: event.specversion, type: event.type, id: event.id, data };
  } catch (error) {
    throw new RequestError(`CloudEvent: ${errorMessage(error)}`, 400, { cause: error });
  }
}

function parseCloudEvent(event: ReceivedEvent): IngestRequest {
  if (event.specversion !== '1.0') {
    throw new RequestError(
      `specversion: unsupported CloudEvents version "${event.specversion}"; expected 1.0`,
    );
  }
  const data = typeof event.data === 'string' ? parseJson(event.data, 'data') : event.data;
  switch (event.type) {
    case EVENT_TYPES.finalized:
      return {
        objects: [parseObjectResource(data, 'data')],
        ignored: [],
        force: false,
        eventId: event.id,
      };
    case EVENT_TYPES.messagePublished:
      return { ...parsePubSub(data, 'data'), eventId: event.id };
    default:
      throw new RequestError(
        `type: unsupported event type "${event.type}"; expected ${EVENT_TYPES.finalized} or ${EVENT_TYPES.messagePublished}`,
      );
  }
}

const generationSchema = z
  .union([z.string(), z.number()])
  .transform((g) => String(g))
  .pipe(z.string().regex(/^[1-9][0-9]{0,19}$/, 'must be a positive integer'));
const sizeSchema = z
  .union([z.string(), z.number()])
  .transform((s) => String(s))
  .pipe(z.string().regex(/^(0|[1-9][0-9]{0,19})$/, 'must be a non-negative integer'))
  .transform(Number);

const objectResourceSchema = z
  .object({
    bucket: z.string(),
    name: z.string(),
    generation: generationSchema,
    size: sizeSchema.optional(),
  })
  .passthrough();

function parseObjectResource(data: unknown, where: string): ObjectRef {
  const resource = check(objectResourceSchema, data, where);
  return checkRef({ ...resource }, where);
}

const pubsubSchema = z
  .object({
    message: z
      .object({
        data: z.string().optional(),
        attributes: z.record(z.string(), z.string()).optional(),
        messageId: z.string().optional(),
        message_id: z.string().optional(),
      })
      .passthrough(),
    subscription: z.string().optional(),
  })
  .passthrough();

const refSchema = z
  .object({ bucket: z.string(), name: z.string(), generation: generationSchema.optional() })
  .strict();
const messageSchema = z.union([
  refSchema.extend({ force: z.boolean().optional() }).strict(),
  z.object({ bucket: z.string(), prefix: z.string(), force: z.boolean().optional() }).strict(),
  z
    .object({ objects: z.array(refSchema).min(1).max(10_000), force: z.boolean().optional() })
    .strict(),
]);

function parsePubSub(data: unknown, where: string): IngestRequest {
  const { message } = check(pubsubSchema, data, where);
  const messageId = message.messageId ?? message.message_id;
  const attributes = message.attributes ?? {};
  const forceId = attributes[FORCE_ID_ATTRIBUTE] ?? messageId;
  const payload = decodeBase64(message.data ?? '', `${where}.message.data`);

  // A Cloud Storage notification: the object resource in data, what happened in the attributes.
  if (attributes.eventType !== undefined && attributes.bucketId !== undefined) {
    const ref = checkRef(
      {
        bucket: attributes.bucketId,
        name: attributes.objectId ?? '',
        generation: check(
          generationSchema,
          attributes.objectGeneration,
          `${where}.message.attributes.objectGeneration`,
        ),
        size: sizeFromResource(payload),
      },
      `${where}.message.attributes`,
    );
    if (attributes.eventType !== 'OBJECT_FINALIZE') {
      const reason = `notification ${attributes.eventType} is not a finalize`;
      return { objects: [], ignored: [{ ref, reason }], force: false, messageId };
    }
    return { objects: [ref], ignored: [], force: false, messageId };
  }

  const json = parseJson(payload, `${where}.message.data`);
  const request = check(messageSchema, json, `${where}.message.data`);
  const force = request.force ?? false;
  if (force && !forceId)
    throw new RequestError(`${where}.message.messageId: required for a forced reprocess`);
  const base = { ignored: [], force, messageId, ...(force ? { forceId } : {}) };
  if ('objects' in request) {
    return {
      ...base,
      objects: request.objects.map((r, i) => checkRef(r, `${where}.message.data.objects[${i}]`)),
    };
  }
  if ('prefix' in request) {
    checkBucket(request.bucket, `${where}.message.data.bucket`);
    checkPrefix(request.prefix, `${where}.message.data.prefix`);
    return { ...base, objects: [], prefix: { bucket: request.bucket, prefix: request.prefix } };
  }
  return { ...base, objects: [checkRef(request, `${where}.message.data`)] };
}

function sizeFromResource(payload: string): number | undefined {
  try {
    const size = sizeSchema.safeParse((JSON.parse(payload) as { size?: unknown } | null)?.size);
    return size.success ? size.data : undefined;
  } catch {
    return undefined;
  }
}

function checkRef<T extends ObjectRef>(ref: T, where: string): ObjectRef {
  checkBucket(ref.bucket, `${where}.bucket`);
  checkName(ref.name, `${where}.name`);
  const out: ObjectRef = { bucket: ref.bucket, name: ref.name };
  if (ref.generation !== undefined) out.generation = ref.generation;
  if (ref.size !== undefined) out.size = ref.size;
  return out;
}

function decodeBase64(data: string, where: string): string {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data.replace(/\s/g, '')))
    throw new RequestError(`${where}: not base64`);
  const bytes = Buffer.from(data, 'base64');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD')) throw new RequestError(`${where}: not UTF-8 text`);
  return text;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RequestError(`${where}: not valid JSON (${errorMessage(error)})`, 400, {
      cause: error,
    });
  }
}

function check<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [where, ...(issue?.path ?? []).map(String)].join('.');
  let problem = issue?.message ?? 'invalid';
  if (issue?.code === 'unrecognized_keys')
    problem = `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const input = (issue?.path ?? []).reduce<unknown>(
    (v, key) => (v as Record<PropertyKey, unknown> | undefined)?.[key],
    value,
  );
  if (issue?.code === 'invalid_union')
    problem = issue.path.length === 0 ? describeUnion(value) : 'must be a string or a number';
  if ((issue?.code === 'invalid_type' || issue?.code === 'invalid_union') && input === undefined)
    problem = 'required';
  throw new RequestError(`${field}: ${problem}`);
}

function describeUnion(value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'expected a JSON object';
  }
  return 'expected {"bucket","name"[,"generation"]}, {"bucket","prefix"} or {"objects":[...]}, each with an optional "force"';
}

function lowerCaseHeaders(headers: HttpInput['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined)
      out[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
