/**
 * The `${NAME}` placeholders of the eventarc/*.yaml definitions: where their values come from (flags,
 * then the environment), which of them a set of documents needs, and filling them in. Pure: no I/O.
 */
import { ConfigError, fieldPath } from '../core/errors';
import { BUCKET_NAME, PROJECT_ID } from '../core/names';

/** The values a definition may leave to the environment, written `${NAME}`. */
export const PLACEHOLDERS = ['PROJECT_ID', 'REGION', 'BUCKET'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type Values = Partial<Record<Placeholder, string>>;
export type Env = Record<string, string | undefined>;

/** Where each placeholder's value comes from: the flag first, then the variables in order. */
export const PLACEHOLDER_SOURCES: Record<Placeholder, { flag: string; env: string[] }> = {
  PROJECT_ID: { flag: '--project', env: ['GOOGLE_CLOUD_PROJECT', 'CLOUDSDK_CORE_PROJECT'] },
  REGION: { flag: '--region', env: ['INGEST_REGION', 'CLOUDSDK_RUN_REGION'] },
  BUCKET: { flag: '--bucket', env: ['INGEST_BUCKET'] },
};

export const REGION = /^[a-z]+-[a-z]+[0-9]+$/;

/** Flag values over environment values, checked. Placeholders with no value stay absent. */
export function resolveValues(flags: Values, env: Env): Values {
  const values: Values = {};
  for (const name of PLACEHOLDERS) {
    const source = PLACEHOLDER_SOURCES[name];
    const value =
      flags[name] ?? source.env.map((v) => env[v]).find((v) => v !== undefined && v !== '');
    if (value === undefined) continue;
    const pattern = { PROJECT_ID, REGION, BUCKET: BUCKET_NAME }[name];
    if (!pattern.test(value)) {
      const where = flags[name] !== undefined ? source.flag : source.env.join(' / ');
      throw new Error(
        `${where}: "${value}" is not a valid ${name.toLowerCase().replace('_', ' ')}`,
      );
    }
    values[name] = value;
  }
  return values;
}

/**
 * Stops with one line naming the flag (and variables) of each value the documents use, or the plan
 * always needs (the project), that neither a flag nor the environment gave.
 */
export function requireValues(
  documents: readonly unknown[],
  values: Values,
): asserts values is Values & { PROJECT_ID: string } {
  const used = new Set<string>(['PROJECT_ID', ...documents.flatMap(placeholdersIn)]);
  const missing = PLACEHOLDERS.filter((name) => used.has(name) && values[name] === undefined);
  if (missing.length === 0) return;
  const wanted = missing.map((name) => {
    const source = PLACEHOLDER_SOURCES[name];
    return `${source.flag} (or set ${source.env.join(' or ')})`;
  });
  throw new Error(`missing ${wanted.join(', ')}`);
}

function placeholdersIn(node: unknown): string[] {
  if (typeof node === 'string') return [...node.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1] ?? '');
  if (node !== null && typeof node === 'object') return Object.values(node).flatMap(placeholdersIn);
  return [];
}

export function substitute(
  file: string,
  node: unknown,
  at: PropertyKey[],
  values: Values,
): unknown {
  if (typeof node === 'string') {
    return node.replace(/\$\{([^}]*)\}/g, (_text, name: string) => {
      if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
        const known = PLACEHOLDERS.map((p) => `\${${p}}`).join(', ');
        throw new ConfigError(
          file,
          fieldPath(at),
          `unknown placeholder \${${name}} (known: ${known})`,
        );
      }
      const value = values[name as Placeholder];
      if (value === undefined) {
        const source = PLACEHOLDER_SOURCES[name as Placeholder];
        const problem = `needs \${${name}}: pass ${source.flag} or set ${source.env.join(' or ')}`;
        throw new ConfigError(file, fieldPath(at), problem);
      }
      return value;
    });
  }
  if (Array.isArray(node)) return node.map((item, i) => substitute(file, item, [...at, i], values));
  if (node !== null && typeof node === 'object') {
    const entries = Object.entries(node).map(([k, v]) => [
      k,
      substitute(file, v, [...at, k], values),
    ]);
    return Object.fromEntries(entries);
  }
  return node;
}
