import { Command, Option } from 'commander';
import {
  alertTargets,
  planAlerts,
  renderScript,
  requireValues,
  resolveValues,
  type Env,
  type Plan,
} from '../deploy';
import { applyPlan, defaultDeps, readDefinitions, type TriggersDeps } from './triggers';

export type AlertsDeps = TriggersDeps;

interface AlertsOptions {
  print?: boolean;
  apply?: boolean;
  project?: string;
  region?: string;
  email?: string;
  dir: string;
}

// Enough to catch a typo that would send alerts nowhere; Monitoring checks the rest.
const EMAIL = /^[^\s@,=]+@[^\s@,=]+\.[^\s@,=]+$/;

export function alertsCommand(deps: AlertsDeps = defaultDeps): Command {
  return new Command('alerts')
    .description(
      'the gcloud commands for alerts that page before data goes missing: rejected objects (a logs-based metric), dead letters, BigQuery quotaExceeded; print them (default) or run them',
    )
    .addOption(
      new Option('--print', 'print the commands as a bash script (the default)').conflicts('apply'),
    )
    .addOption(new Option('--apply', 'run the commands, stopping at the first failure'))
    .option(
      '--project <id>',
      'Google Cloud project (default: $GOOGLE_CLOUD_PROJECT or $CLOUDSDK_CORE_PROJECT)',
    )
    .option(
      '--region <region>',
      "the service's region: only its logs count (default: $INGEST_REGION; none: every region)",
    )
    .option('--email <address>', 'also an email notification channel, which every alert notifies')
    .option(
      '--dir <dir>',
      'folder of trigger definitions (services, dead-letter subscriptions)',
      'eventarc',
    )
    .action(async (options: AlertsOptions) => {
      const plan = loadAlerts(options, deps.env);
      if (options.apply) await applyPlan(plan, deps);
      else deps.out(renderScript(plan));
    });
}

function loadAlerts(options: AlertsOptions, env: Env): Plan {
  const values = resolveValues({ PROJECT_ID: options.project, REGION: options.region }, env);
  requireValues([], values);
  if (options.email !== undefined && !EMAIL.test(options.email))
    throw new Error(`--email: "${options.email}" is not an email address`);
  const documents = readDefinitions(options.dir);
  return planAlerts({
    project: values.PROJECT_ID,
    region: values.REGION,
    email: options.email,
    ...alertTargets(documents, values),
  });
}
