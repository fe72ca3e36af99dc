/**
 * The alerts that page before data goes missing -> the gcloud commands that create them: an alert on
 * the service's rejections (a logs-based metric), on the dead-letter subscriptions the triggers use
 * (anything there was never loaded), and on BigQuery's `quotaExceeded`; optionally an email
 * notification channel they use. Pure: no I/O.
 */
import { z } from 'zod/v3';
import { toConfigError } from '../core/errors';
import { substitute, type Values } from './placeholders';
import type { Plan, Step, Word } from './plan';

type Section = Plan['sections'][number];

export const REJECTED_METRIC = 'gcs-bq-ingest-rejected';
export const QUOTA_METRIC = 'gcs-bq-ingest-quota-exceeded';
/** The variable the printed script keeps the notification channel's name in. */
export const CHANNEL = 'CHANNEL';

export interface AlertsInput {
  project: string;
  /** The Cloud Run region: the log filters keep to it when given. */
  region?: string;
  /** The Cloud Run services the trigger definitions deliver to. */
  services: string[];
  /** The dead-letter subscriptions the trigger definitions name. */
  deadLetterSubscriptions: string[];
  /** Where an email notification channel sends alerts; without one the policies notify no one. */
  email?: string;
}

const targetsSchema = z.object({
  destination: z.object({ service: z.string().min(1) }),
  subscription: z.object({ deadLetterSubscription: z.string().min(1) }),
});

/** The services and dead-letter subscriptions of the trigger definitions (eventarc/*.yaml). */
export function alertTargets(
  documents: { file: string; raw: unknown }[],
  values: Values,
): Pick<AlertsInput, 'services' | 'deadLetterSubscriptions'> {
  const services = new Set<string>();
  const deadLetters = new Set<string>();
  for (const { file, raw } of documents) {
    const parsed = targetsSchema.safeParse(raw);
    if (!parsed.success) throw toConfigError(file, parsed.error, raw);
    const { destination, subscription } = parsed.data;
    const fill = (value: string, at: string[]) => String(substitute(file, value, at, values));
    services.add(fill(destination.service, ['destination', 'service']));
    const sub = subscription.deadLetterSubscription;
    deadLetters.add(fill(sub, ['subscription', 'deadLetterSubscription']));
  }
  return { services: [...services], deadLetterSubscriptions: [...deadLetters] };
}

export function planAlerts(input: AlertsInput): Plan {
  const notify = input.email !== undefined;
  return {
    sections: [
      ...(input.email === undefined ? [] : [channelSection(input.project, input.email)]),
      rejectedSection(input, notify),
      deadLetterSection(input, notify),
      quotaSection(input, notify),
    ],
  };
}

const COUNTED = {
  alignmentPeriod: '300s',
  perSeriesAligner: 'ALIGN_DELTA',
  crossSeriesReducer: 'REDUCE_SUM',
};

function rejectedSection(input: AlertsInput, notify: boolean): Section {
  const filter = `${serviceLogs(input)} AND jsonPayload.outcome="rejected"`;
  return {
    title: `Rejected objects: a logs-based metric counting the service's outcome="rejected" lines, and an alert when one is logged.`,
    steps: [
      logMetric(input.project, REJECTED_METRIC, 'Objects gcs-bq-ingest rejected', filter),
      policy(input.project, notify, {
        displayName: 'gcs-bq-ingest: rejected objects',
        documentation: `An object could not be loaded and was copied to the quarantine prefix. \`gcs-bq-ingest history --outcome rejected\` lists the rejections with their reasons; fix the file and upload it again.`,
        filter: `metric.type="logging.googleapis.com/user/${REJECTED_METRIC}" AND resource.type="cloud_run_revision"`,
        aggregation: COUNTED,
      }),
    ],
  };
}

function deadLetterSection(input: AlertsInput, notify: boolean): Section {
  return {
    title: `Dead letters: an alert while a dead-letter subscription holds messages (events never handled, objects never loaded).`,
    steps: input.deadLetterSubscriptions.map((sub) =>
      policy(input.project, notify, {
        displayName: `gcs-bq-ingest: dead letters in ${sub}`,
        documentation: `Events the service could not handle within the subscription's delivery attempts are in \`${sub}\`: their objects were never loaded. Look at them with \`gcloud pubsub subscriptions pull ${sub} --limit=10\`, fix the cause, then reprocess the objects.`,
        filter: `metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" AND resource.type="pubsub_subscription" AND resource.labels.subscription_id="${sub}"`,
        aggregation: { alignmentPeriod: '300s', perSeriesAligner: 'ALIGN_MAX' },
      }),
    ),
  };
}

function quotaSection(input: AlertsInput, notify: boolean): Section {
  const filter = `${serviceLogs(input)} AND severity=WARNING AND jsonPayload.message:"quotaExceeded"`;
  return {
    title: `BigQuery quotas: a logs-based metric counting the service's WARNING lines that name quotaExceeded, and an alert when one is logged.`,
    steps: [
      logMetric(
        input.project,
        QUOTA_METRIC,
        'gcs-bq-ingest WARNING lines naming quotaExceeded',
        filter,
      ),
      policy(input.project, notify, {
        displayName: 'gcs-bq-ingest: BigQuery quota exceeded',
        documentation: `BigQuery refused a load job for a quota (\`quotaExceeded\`): the service slowed that table's pace, or answered 503 and redelivery retries. If it goes on, events end in the dead letters: see "Quotas and what the service does when one is hit" in docs/reliability.md.`,
        filter: `metric.type="logging.googleapis.com/user/${QUOTA_METRIC}" AND resource.type="cloud_run_revision"`,
        aggregation: COUNTED,
      }),
    ],
  };
}

/** The service's log entries on Cloud Run, in its region when one is given. */
function serviceLogs({ services, region }: AlertsInput): string {
  const names = services.map((s) => `resource.labels.service_name="${s}"`);
  const service = names.length === 1 ? names[0] : `(${names.join(' OR ')})`;
  const where = region === undefined ? '' : ` AND resource.labels.location="${region}"`;
  return `resource.type="cloud_run_revision" AND ${service}${where}`;
}

function channelSection(project: string, email: string): Section {
  const channels = ['gcloud', 'beta', 'monitoring', 'channels'];
  return {
    title: `An email notification channel to ${email}, which the alert policies below notify.`,
    steps: [
      {
        kind: 'find',
        into: CHANNEL,
        argv: [
          ...channels,
          'list',
          `--project=${project}`,
          `--filter=type="email" AND labels.email_address="${email}"`,
          '--format=value(name)',
          '--limit=1',
        ],
        create: [
          ...channels,
          'create',
          `--project=${project}`,
          '--type=email',
          '--display-name=gcs-bq-ingest alerts',
          '--description=Alerts of gcs-bq-ingest: rejected objects, dead letters, BigQuery quotas',
          `--channel-labels=email_address=${email}`,
          '--format=value(name)',
        ],
      },
    ],
  };
}

function logMetric(project: string, name: string, description: string, filter: string): Step {
  const metrics = ['gcloud', 'logging', 'metrics'];
  return {
    kind: 'ensure',
    check: [...metrics, 'describe', name, `--project=${project}`, '--format=none'],
    create: [
      ...metrics,
      'create',
      name,
      `--project=${project}`,
      `--description=${description}`,
      `--log-filter=${filter}`,
    ],
  };
}

interface PolicySpec {
  displayName: string;
  documentation: string;
  filter: string;
  aggregation: Record<string, string>;
}

/** An alert policy, created unless one of that display name exists: a threshold of more than 0. */
function policy(project: string, notify: boolean, spec: PolicySpec): Step {
  const policies = ['gcloud', 'alpha', 'monitoring', 'policies'];
  return {
    kind: 'ensure',
    exists: 'prints',
    check: [
      ...policies,
      'list',
      `--project=${project}`,
      `--filter=displayName="${spec.displayName}"`,
      '--format=value(name)',
    ],
    create: [...policies, 'create', `--project=${project}`, policyWord(spec, notify)],
  };
}

// Stands for the channel's name in the JSON until it is split into a reference to CHANNEL.
const CHANNEL_MARK = '@@CHANNEL@@';

/** `--policy=<AlertPolicy JSON>`, its notification channel the captured CHANNEL. */
export function policyWord(spec: PolicySpec, notify: boolean): Word {
  const json = JSON.stringify({
    displayName: spec.displayName,
    documentation: { content: spec.documentation, mimeType: 'text/markdown' },
    combiner: 'OR',
    conditions: [
      {
        displayName: spec.displayName.replace(/^gcs-bq-ingest: /, ''),
        conditionThreshold: {
          filter: spec.filter,
          aggregations: [spec.aggregation],
          comparison: 'COMPARISON_GT',
          thresholdValue: 0,
          duration: '0s',
          trigger: { count: 1 },
        },
      },
    ],
    alertStrategy: { autoClose: '1800s' },
    ...(notify ? { notificationChannels: [CHANNEL_MARK] } : {}),
  });
  const [before, after] = `--policy=${json}`.split(CHANNEL_MARK);
  return after === undefined ? (before as string) : [before as string, { ref: CHANNEL }, after];
}
