/**
 * Checked trigger definitions -> the Plan that creates them and sets the retry and dead-letter policy
 * of the Pub/Sub subscription each trigger delivers through. Pure: no I/O.
 */
import { EVENT_TYPES } from '../objects/request';
import type { Definition } from './definition';
import type { Plan, Step, Word } from './plan';

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
