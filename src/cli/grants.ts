import { Command } from 'commander';
import { planGrants } from '../deploy/grants';
import { renderScript, resolveValues, requireValues, type Env } from '../deploy';
import { readConfig } from './context';

export interface GrantsDeps {
  env: Env;
  out: (text: string) => void;
}

const defaultDeps: GrantsDeps = { env: process.env, out: (text) => process.stdout.write(text) };

interface GrantsOptions {
  project?: string;
  bucket?: string;
  serviceAccount?: string;
}

export function grantsCommand(deps: GrantsDeps = defaultDeps): Command {
  return new Command('grants')
    .description(
      "print, as a bash script, the service account's grants on the datasets and buckets the configuration (INGEST_CONFIG or ./ingest.yaml) names",
    )
    .option(
      '--project <id>',
      'project of the service account (default: $GOOGLE_CLOUD_PROJECT or $CLOUDSDK_CORE_PROJECT)',
    )
    .option(
      '--bucket <name>',
      'the landing bucket, when ingest.yaml has no `buckets` allowlist (default: $INGEST_BUCKET)',
    )
    .option(
      '--service-account <email>',
      'default: gcs-bq-ingest-run@PROJECT.iam.gserviceaccount.com',
    )
    .action((options: GrantsOptions) => {
      const values = resolveValues(
        { PROJECT_ID: options.project, BUCKET: options.bucket },
        deps.env,
      );
      const config = readConfig(deps.env);
      requireValues(config.buckets === undefined ? ['${BUCKET}'] : [], values);
      deps.out(
        renderScript(
          planGrants({
            config,
            project: values.PROJECT_ID,
            serviceAccount:
              options.serviceAccount ??
              `gcs-bq-ingest-run@${values.PROJECT_ID}.iam.gserviceaccount.com`,
            buckets: values.BUCKET === undefined ? [] : [values.BUCKET],
          }),
        ),
      );
    });
}
