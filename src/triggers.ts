/**
 * Eventarc trigger definitions (eventarc/*.yaml) -> the gcloud commands that create them and set the
 * retry and dead-letter policy of the Pub/Sub subscription each trigger delivers through. Pure: no I/O.
 */
import { z } from 'zod/v3';
import { parseYamlText } from './yaml-text';
import { ConfigError, fieldPath, toConfigError } from './errors';
import { EVENT_TYPES } from './events';
import { BUCKET_NAME, PROJECT_ID } from './names';

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

/**
 * How long a message stays in the dead-letter subscription: Pub/Sub's maximum, 31 days (the default
 * is 7), so that a dead letter outlives a long absence.
 */
export const DEAD_LETTER_RETENTION = '31d';

/**
 * What `gcloud eventarc triggers create` answers while the Eventarc service agent of a new project is
 * still being provisioned; Google's advice is to create the trigger again after a few minutes.
 */
export const AGENT_NOT_READY = 'Permission denied while using the Eventarc Service Agent';
/** The waits, in seconds, before each new attempt at a create that failed with AGENT_NOT_READY. */
export const AGENT_RETRY_SECONDS = [20, 40, 80, 160] as const;

const REGION = /^[a-z]+-[a-z]+[0-9]+$/;
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

function substitute(file: string, node: unknown, at: PropertyKey[], values: Values): unknown {
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

/** A reference to a value an earlier `capture` step printed, such as the project number. */
export interface Ref {
  ref: string;
}
/** One command-line argument: plain text, or text joined with captured values. */
export type Word = string | readonly (string | Ref)[];

export type Step =
  /** Run the command; a failure stops. */
  | { kind: 'run'; argv: Word[] }
  /**
   * Run `create` unless `check` succeeds (the resource exists already, and is kept as it is). With
   * `retryWhile`, a create whose output contains that text is run again after each of
   * AGENT_RETRY_SECONDS.
   */
  | { kind: 'ensure'; check: Word[]; create: Word[]; retryWhile?: string }
  /** Run the command and keep its trimmed output under `into`. */
  | { kind: 'capture'; into: string; argv: Word[] };

export interface Plan {
  /** What each group of steps does, shown as a comment before it. */
  sections: { title: string; steps: Step[] }[];
}

export const PROJECT_NUMBER = 'PROJECT_NUMBER';

/** The Pub/Sub service agent, which must publish dead letters and forward them from the subscription. */
const PUBSUB_AGENT: Word = [
  'serviceAccount:service-',
  { ref: PROJECT_NUMBER },
  '@gcp-sa-pubsub.iam.gserviceaccount.com',
];

export function subscriptionVariable(trigger: string): string {
  return `SUBSCRIPTION_${trigger.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * The commands that create every topic and trigger the definitions need and give each trigger's
 * subscription its policy. Running them again changes nothing that exists except that policy.
 */
export function planTriggers(definitions: readonly Definition[], project: string): Plan {
  checkUniqueNames(definitions);
  const p = `--project=${project}`;
  const sections = [
    projectNumberSection(project),
    topicsSection(definitions, p),
    deadLetterSection(deadLetterTopics(definitions), p),
    ...definitions.map((d) => triggerSection(d, project)),
  ];
  return { sections: sections.filter((s) => s.steps.length > 0) };
}

type Section = Plan['sections'][number];

function checkUniqueNames(definitions: readonly Definition[]): void {
  const names = new Set<string>();
  for (const d of definitions) {
    if (names.has(d.name)) throw new Error(`two definitions name the trigger "${d.name}"`);
    names.add(d.name);
  }
}

/** Each dead-letter subscription and the one topic it reads. */
function deadLetterTopics(definitions: readonly Definition[]): Map<string, string> {
  const deadLetters = new Map<string, string>();
  for (const d of definitions) {
    const { deadLetterSubscription: sub, deadLetterTopic: topic } = d.subscription;
    const other = deadLetters.get(sub);
    if (other !== undefined && other !== topic) {
      throw new Error(
        `dead-letter subscription "${sub}" is given two topics: "${other}" and "${topic}"`,
      );
    }
    deadLetters.set(sub, topic);
  }
  return deadLetters;
}

function projectNumberSection(project: string): Section {
  return {
    title:
      'The project number names the Pub/Sub service agent, which moves messages to the dead-letter topic.',
    steps: [
      {
        kind: 'capture',
        into: PROJECT_NUMBER,
        argv: ['gcloud', 'projects', 'describe', project, '--format=value(projectNumber)'],
      },
    ],
  };
}

function topicsSection(definitions: readonly Definition[], p: string): Section {
  const topics = unique(
    definitions.flatMap((d) => [
      ...(d.event.type === EVENT_TYPES.messagePublished ? [d.event.topic] : []),
      d.subscription.deadLetterTopic,
    ]),
  );
  return {
    title: 'Topics the triggers deliver through or dead-letter to.',
    steps: topics.map((topic) => ({
      kind: 'ensure',
      check: ['gcloud', 'pubsub', 'topics', 'describe', topic, p, '--format=none'],
      create: ['gcloud', 'pubsub', 'topics', 'create', topic, p],
    })),
  };
}

function deadLetterSection(deadLetters: ReadonlyMap<string, string>, p: string): Section {
  return {
    title: `Dead letters are kept for ${DEAD_LETTER_RETENTION} in their own subscription; the service agent may publish them.`,
    steps: [
      ...[...deadLetters].map(([sub, topic]): Step => ({
        kind: 'ensure',
        check: ['gcloud', 'pubsub', 'subscriptions', 'describe', sub, p, '--format=none'],
        create: [
          'gcloud',
          'pubsub',
          'subscriptions',
          'create',
          sub,
          p,
          `--topic=${topic}`,
          `--message-retention-duration=${DEAD_LETTER_RETENTION}`,
        ],
      })),
      ...unique([...deadLetters.values()]).map((topic): Step => ({
        kind: 'run',
        argv: [
          'gcloud',
          'pubsub',
          'topics',
          'add-iam-policy-binding',
          topic,
          p,
          ['--member=', ...PUBSUB_AGENT],
          '--role=roles/pubsub.publisher',
          '--format=none',
        ],
      })),
    ],
  };
}

/** Creates the trigger unless it exists, then sets its subscription's retry and dead-letter policy. */
function triggerSection(d: Definition, project: string): Section {
  const p = `--project=${project}`;
  const topicPath = (topic: string) => `projects/${project}/topics/${topic}`;
  const where = [p, `--location=${d.location}`];
  const filters =
    d.event.type === EVENT_TYPES.finalized
      ? [`--event-filters=type=${d.event.type}`, `--event-filters=bucket=${d.event.bucket}`]
      : [`--event-filters=type=${d.event.type}`, `--transport-topic=${topicPath(d.event.topic)}`];
  const sub: Word = [{ ref: subscriptionVariable(d.name) }];
  const s = d.subscription;
  return {
    title: `Trigger ${d.name}: ${d.event.type} -> Cloud Run service ${d.destination.service}, path ${d.destination.path}; then its subscription's retry and dead-letter policy.`,
    steps: [
      {
        kind: 'ensure',
        check: ['gcloud', 'eventarc', 'triggers', 'describe', d.name, ...where, '--format=none'],
        create: [
          'gcloud',
          'eventarc',
          'triggers',
          'create',
          d.name,
          ...where,
          ...filters,
          `--destination-run-service=${d.destination.service}`,
          `--destination-run-region=${d.destination.region}`,
          `--destination-run-path=${d.destination.path}`,
          `--service-account=${d.serviceAccount}`,
        ],
        retryWhile: AGENT_NOT_READY,
      },
      {
        kind: 'capture',
        into: subscriptionVariable(d.name),
        argv: [
          'gcloud',
          'eventarc',
          'triggers',
          'describe',
          d.name,
          ...where,
          '--format=value(transport.pubsub.subscription)',
        ],
      },
      {
        kind: 'run',
        argv: [
          'gcloud',
          'pubsub',
          'subscriptions',
          'update',
          sub,
          p,
          `--ack-deadline=${s.ackDeadlineSeconds}`,
          `--min-retry-delay=${s.minRetryDelay}s`,
          `--max-retry-delay=${s.maxRetryDelay}s`,
          `--max-delivery-attempts=${s.maxDeliveryAttempts}`,
          `--dead-letter-topic=${topicPath(s.deadLetterTopic)}`,
        ],
      },
      {
        kind: 'run',
        argv: [
          'gcloud',
          'pubsub',
          'subscriptions',
          'add-iam-policy-binding',
          sub,
          p,
          ['--member=', ...PUBSUB_AGENT],
          '--role=roles/pubsub.subscriber',
          '--format=none',
        ],
      },
    ],
  };
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** A word for a POSIX shell: as it is when that is safe, else in single quotes. */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function renderWord(word: Word): string {
  if (typeof word === 'string') return shellQuote(word);
  return word
    .map((part) =>
      typeof part === 'string' ? (part === '' ? '' : shellQuote(part)) : `"$${part.ref}"`,
    )
    .join('');
}

function renderArgv(argv: readonly Word[]): string {
  return argv.map(renderWord).join(' ');
}

/** One step as one line of a bash script. */
export function renderStep(step: Step): string {
  switch (step.kind) {
    case 'run':
      return renderArgv(step.argv);
    case 'ensure': {
      const retry =
        step.retryWhile === undefined ? '' : `retry_while ${shellQuote(step.retryWhile)} `;
      return `${renderArgv(step.check)} >/dev/null 2>&1 || ${retry}${renderArgv(step.create)}`;
    }
    case 'capture':
      return `${step.into}="$(${renderArgv(step.argv)})"`;
  }
}

/** `retry_while TEXT COMMAND...`: the script's form of an ensure step's `retryWhile`. */
const RETRY_WHILE = [
  `# retry_while TEXT COMMAND...: runs COMMAND; while it fails saying TEXT, runs it again after ${AGENT_RETRY_SECONDS.join(', ')} s.`,
  'retry_while() {',
  '  local text=$1 delay output',
  '  shift',
  `  for delay in ${AGENT_RETRY_SECONDS.join(' ')} ''; do`,
  '    if output=$("$@" 2>&1); then printf \'%s\\n\' "$output"; return 0; fi',
  '    printf \'%s\\n\' "$output" >&2',
  '    if [[ -z $delay || $output != *"$text"* ]]; then return 1; fi',
  '    echo "not ready yet; trying again in $delay s" >&2',
  '    sleep "$delay"',
  '  done',
  '}',
];

/** The whole plan as a bash script that stops at the first failure. */
export function renderScript(plan: Plan): string {
  const lines = ['#!/usr/bin/env bash', 'set -euo pipefail'];
  const steps = plan.sections.flatMap((s) => s.steps);
  if (steps.some((s) => s.kind === 'ensure' && s.retryWhile !== undefined))
    lines.push('', ...RETRY_WHILE);
  for (const section of plan.sections) {
    lines.push('', `# ${section.title}`, ...section.steps.map(renderStep));
  }
  return `${lines.join('\n')}\n`;
}

/** The argument vector of a step's command, with captured values filled in. */
export function resolveArgv(
  argv: readonly Word[],
  captured: Readonly<Record<string, string>>,
): string[] {
  return argv.map((word) => {
    if (typeof word === 'string') return word;
    return word
      .map((part) => {
        if (typeof part === 'string') return part;
        const value = captured[part.ref];
        if (value === undefined) throw new Error(`${part.ref} was not captured before it is used`);
        return value;
      })
      .join('');
  });
}
