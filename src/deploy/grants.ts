/**
 * The service account's grants on the data, derived from the configuration (ingest.yaml): BigQuery
 * Data Editor on every dataset a route names, and on each bucket read and list everywhere, metadata
 * updates (the claims of coalesced loads), and create or replace only under the quarantine prefix;
 * Pub/Sub Publisher on each topic outcome notifications go to.
 * Pure: config in, a Plan (rendered by triggers.ts) out.
 */
import type { Config } from '../config';
import { placeholders } from '../config';
import type { Plan, Step } from '.';

/** The custom role whose one permission lets the service write an object's metadata (its claim). */
export const CLAIMS_ROLE_ID = 'gcsBqIngestClaims';
export const CLAIMS_PERMISSION = 'storage.objects.update';

export interface GrantsInput {
  config: Pick<Config, 'project' | 'buckets' | 'quarantinePrefix' | 'routes' | 'notify'>;
  /** Project of the service account, the custom role and any dataset the config gives no project. */
  project: string;
  serviceAccount: string;
  /** Buckets to grant on when the config has no allowlist. */
  buckets: string[];
}

export function planGrants(input: GrantsInput): Plan {
  const { config, project, serviceAccount } = input;
  const member = `--member=serviceAccount:${serviceAccount}`;
  const datasetProject = config.project ?? project;
  const datasets = new Map<string, number[]>();
  const templates: { index: number; dataset: string }[] = [];
  for (const route of config.routes) {
    if (placeholders(route.dataset).length > 0) {
      templates.push({ index: route.index, dataset: route.dataset });
    } else {
      datasets.set(route.dataset, [...(datasets.get(route.dataset) ?? []), route.index]);
    }
  }
  const role = `projects/${project}/roles/${CLAIMS_ROLE_ID}`;
  const buckets = config.buckets ?? input.buckets;
  return {
    sections: [
      {
        title: `BigQuery Data Editor on each dataset the routes name (project ${datasetProject}).`,
        steps: [...datasets].map(([dataset]): Step => ({
          kind: 'run',
          argv: [
            'bq',
            'add-iam-policy-binding',
            '--dataset',
            member,
            '--role=roles/bigquery.dataEditor',
            `${datasetProject}:${dataset}`,
          ],
        })),
      },
      ...templates.map(({ index, dataset }) => ({
        title: `routes[${index}] names its dataset by a template, "${dataset}", so its datasets cannot be listed here: grant roles/bigquery.dataEditor on each one it can name, as above.`,
        steps: [],
      })),
      {
        title: `A custom role with only ${CLAIMS_PERMISSION}, for the claims (object metadata): roles/storage.objectUser would also let the service delete and overwrite any object.`,
        steps: [
          {
            kind: 'ensure',
            check: [
              'gcloud',
              'iam',
              'roles',
              'describe',
              CLAIMS_ROLE_ID,
              `--project=${project}`,
              '--format=none',
            ],
            create: [
              'gcloud',
              'iam',
              'roles',
              'create',
              CLAIMS_ROLE_ID,
              `--project=${project}`,
              '--title=gcs-bq-ingest claims',
              `--permissions=${CLAIMS_PERMISSION}`,
              '--stage=GA',
            ],
          },
        ],
      },
      ...buckets.map((bucket) => ({
        title: `gs://${bucket}: read and list everywhere, claim (update metadata) everywhere, create and replace only under ${config.quarantinePrefix} (an IAM condition, which needs uniform bucket-level access).`,
        steps: [
          grant(bucket, member, 'roles/storage.objectViewer'),
          grant(bucket, member, role),
          grant(bucket, member, 'roles/storage.objectUser', [
            `--condition=expression=resource.name.startsWith('projects/_/buckets/${bucket}/objects/${config.quarantinePrefix}'),title=gcs-bq-ingest quarantine`,
          ]),
        ],
      })),
      ...notifyGrants(config, member),
    ],
  };
}

/**
 * Each topic `notify` names (top level and routes) exists, and the service may publish to it: Pub/Sub
 * Publisher on that topic only.
 */
function notifyGrants(config: GrantsInput['config'], member: string): Plan['sections'] {
  const topics = new Set<string>();
  if (config.notify) topics.add(config.notify.topic);
  for (const route of config.routes) if (route.notify) topics.add(route.notify.topic);
  if (topics.size === 0) return [];
  const pubsub = ['gcloud', 'pubsub', 'topics'];
  return [
    {
      title: `Outcome notifications (notify): each topic, and Pub/Sub Publisher on it only.`,
      steps: [...topics].flatMap((topic): Step[] => [
        {
          kind: 'ensure',
          check: [...pubsub, 'describe', topic, '--format=none'],
          create: [...pubsub, 'create', topic],
        },
        {
          kind: 'run',
          argv: [
            ...pubsub,
            'add-iam-policy-binding',
            topic,
            member,
            '--role=roles/pubsub.publisher',
            '--format=none',
          ],
        },
      ]),
    },
  ];
}

function grant(bucket: string, member: string, role: string, extra: string[] = []): Step {
  return {
    kind: 'run',
    argv: [
      'gcloud',
      'storage',
      'buckets',
      'add-iam-policy-binding',
      `gs://${bucket}`,
      member,
      `--role=${role}`,
      ...extra,
    ],
  };
}
