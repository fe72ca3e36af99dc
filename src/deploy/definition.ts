/**
 * One Eventarc trigger definition (eventarc/*.yaml) -> a checked Definition: the trigger, its event,
 * its Cloud Run destination and its subscription's retry and dead-letter policy. Pure: no I/O.
 */
import { z } from 'zod/v3';
import { parseYamlText } from '../config/yaml-text';
import { toConfigError } from '../core/errors';
import { EVENT_TYPES } from '../objects/request';
import { BUCKET_NAME } from '../core/names';
import { REGION, substitute, type Values } from './placeholders';

const PUBSUB_ID = /^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/;

// gcloud takes INTEGER[UNIT] with s, m, h or d; Pub/Sub allows retry delays from 0 to 600 seconds.
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const retryDelay = z
  .string()
  .regex(/^[0-9]+[smhd]?$/, 'must be a duration such as 10s or 10m')
  .transform((text) => Number.parseInt(text, 10) * (UNIT_SECONDS[text.slice(-1)] ?? 1))
  .refine((seconds) => seconds <= 600, 'must be at most 600s');

const pubsubId = (what: string) => z.string().regex(PUBSUB_ID, `is not a valid Pub/Sub ${what} id`);

const subscriptionSchema = z
  .object({
    ackDeadlineSeconds: z.number().int().min(10).max(600),
    minRetryDelay: retryDelay,
    maxRetryDelay: retryDelay,
    maxDeliveryAttempts: z.number().int().min(5).max(100),
    deadLetterTopic: pubsubId('topic'),
    deadLetterSubscription: pubsubId('subscription'),
  })
  .strict()
  .refine((s) => s.minRetryDelay <= s.maxRetryDelay, {
    message: 'must not be longer than maxRetryDelay',
    path: ['minRetryDelay'],
  });

const eventSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal(EVENT_TYPES.finalized),
      bucket: z.string().regex(BUCKET_NAME, 'is not a valid bucket name'),
    })
    .strict(),
  z.object({ type: z.literal(EVENT_TYPES.messagePublished), topic: pubsubId('topic') }).strict(),
]);

const definitionSchema = z
  .object({
    name: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{0,62}$/,
        'must be lower-case letters, digits and "-", starting with a letter',
      ),
    location: z.string().regex(/^[a-z0-9-]+$/, 'is not a location such as us-central1'),
    event: eventSchema,
    destination: z
      .object({
        service: z
          .string()
          .regex(/^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$/, 'is not a valid Cloud Run service name'),
        region: z.string().regex(REGION, 'is not a region such as us-central1'),
        path: z.string().regex(/^\/[^\s]*$/, 'must start with "/"'),
      })
      .strict(),
    serviceAccount: z
      .string()
      .regex(/^[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com$/, 'is not a service account email'),
    subscription: subscriptionSchema,
  })
  .strict();

export type Definition = z.infer<typeof definitionSchema>;

/** One definition file's text -> a checked Definition, or a ConfigError naming the file and the field. */
export function parseDefinition(file: string, text: string, values: Values): Definition {
  return checkDefinition(file, readDefinition(file, text), values);
}

/** A definition file's YAML -> its document, placeholders not yet filled in. */
export function readDefinition(file: string, text: string): unknown {
  return parseYamlText(file, text) ?? {};
}

/** A definition document with its placeholders filled in -> a checked Definition. */
export function checkDefinition(file: string, raw: unknown, values: Values): Definition {
  const substituted = substitute(file, raw, [], values);
  const parsed = definitionSchema.safeParse(substituted);
  if (!parsed.success) throw toConfigError(file, parsed.error, substituted);
  return parsed.data;
}
