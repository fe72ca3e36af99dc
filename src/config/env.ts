import { z } from 'zod/v3';

export const BACKENDS = ['local', 'gcp'] as const;
export type Backend = (typeof BACKENDS)[number];

const PORT_RULE = 'must be a port number, an integer from 0 to 65535';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const secondsSchema = z.coerce.number({
  errorMap: () => ({ message: 'must be a number of seconds' }),
});
export const envSchema = z.object({
  INGEST_BACKEND: z.enum(BACKENDS).default('local'),
  LOCAL_DATA_DIR: z.string().min(1).default('./local-data'),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
  PUBSUB_EMULATOR_HOST: z
    .string()
    .optional()
    .transform((host) => host || undefined),
  INGEST_WAIT_SECONDS: z.coerce.number().positive().default(540),
  INGEST_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  INGEST_MAX_OBJECT_BYTES: z.coerce.number().int().positive().optional(),
  INGEST_CLAIM_GRACE_SECONDS: z.coerce.number().positive().optional(),
  INGEST_SHUTDOWN_GRACE_SECONDS: secondsSchema.min(0, 'must be 0 or more seconds').optional(),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, {
      errorMap: (_issue, ctx) => ({
        message: `is ${JSON.stringify(ctx.data)}: must be one of ${LOG_LEVELS.join(', ')}`,
      }),
    })
    .default('info'),
  PORT: z
    .string()
    .regex(/^[0-9]{1,5}$/, PORT_RULE)
    .transform(Number)
    .refine((port) => port <= 65_535, PORT_RULE)
    .optional(),
});

export type Env = Record<string, string | undefined>;
