import * as path from 'node:path';
import { ConfigError, errorMessage, toConfigError } from '../core/errors';
import type * as YamlText from './yaml-text';
import { envSchema, type Env } from './env';
import { buildRoutes, topNotify } from './routes';
import type { ReadFile } from './schema-files';
import type { Config } from './types';
import { fileSchema } from './yaml-schema';

export { BACKENDS, LOG_LEVELS, type Backend, type Env, type LogLevel } from './env';
export { FIELD_TYPES, type FieldType, type ReadFile, type SchemaField } from './schema-files';
export { placeholders } from './templates';
export {
  DEFAULT_BATCH,
  DEFAULT_COLUMNS,
  type BatchOptions,
  type ColumnRules,
  type NotifyOptions,
  type Config,
  type Route,
} from './types';
export {
  DEFAULT_CSV,
  ENCODINGS,
  LATIN1_HINT,
  NOTIFY_OUTCOMES,
  WRITE_MODES,
  type CsvOptions,
  type NotifyOutcome,
  type WriteMode,
} from './yaml-schema';

const BUILT_IN = 'built-in defaults';

/** Reads INGEST_CONFIG (or ./ingest.yaml when present) and the environment into a checked Config. */
export function loadConfig(env: Env, readFile: ReadFile): Config {
  const settings = envSchema.safeParse(env);
  if (!settings.success) throw toConfigError('environment', settings.error, env);
  const explicit = env.INGEST_CONFIG || undefined;
  const file = explicit ?? 'ingest.yaml';
  let text: string | undefined;
  try {
    text = readFile(file);
  } catch (error) {
    if (explicit !== undefined || !isNotFound(error)) {
      throw new ConfigError(file, '(file)', `cannot be read: ${errorMessage(error)}`);
    }
  }
  const raw = text === undefined ? {} : (yamlText().parseYamlText(file, text) ?? {});
  const source = text === undefined ? BUILT_IN : file;
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw toConfigError(source, parsed.error, raw);
  const doc = parsed.data;
  const baseDir = text === undefined ? '.' : path.dirname(file);
  const quarantinePrefix = doc.quarantine?.prefix ?? '_quarantine/';

  const routes = buildRoutes(source, doc, baseDir, readFile);

  return {
    source,
    backend: settings.data.INGEST_BACKEND,
    localDataDir: settings.data.LOCAL_DATA_DIR,
    project: doc.project ?? settings.data.GOOGLE_CLOUD_PROJECT,
    location: doc.location ?? 'US',
    buckets: doc.buckets,
    quarantinePrefix,
    reprocess: { topic: doc.reprocess?.topic, inlineLimit: doc.reprocess?.inlineLimit ?? 100 },
    routes,
    notify: topNotify(doc.notify),
    pubsubEmulatorHost: settings.data.PUBSUB_EMULATOR_HOST,
    waitSeconds: settings.data.INGEST_WAIT_SECONDS,
    maxBodyBytes: settings.data.INGEST_MAX_BODY_BYTES,
    maxObjectBytes: settings.data.INGEST_MAX_OBJECT_BYTES,
    claimGraceSeconds: settings.data.INGEST_CLAIM_GRACE_SECONDS,
    shutdownGraceSeconds: settings.data.INGEST_SHUTDOWN_GRACE_SECONDS,
    logLevel: settings.data.LOG_LEVEL,
  };
}

/** The YAML parser takes tens of milliseconds to load: a start without a config file does without it. */
function yamlText(): typeof YamlText {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./yaml-text') as typeof YamlText;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}
