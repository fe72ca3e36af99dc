#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, errorMessage, firstLine } from '../core/errors';
import { alertsCommand } from './alerts';
import { devCommand } from './dev';
import { emitCommand } from './emit';
import { grantsCommand } from './grants';
import { historyCommand } from './history';
import { reprocessCommand } from './reprocess';
import { tablesCommand } from './tables';
import { triggersCommand } from './triggers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

const program = new Command('gcs-bq-ingest')
  .description(
    "Load CSV objects from Cloud Storage into BigQuery, exactly once per object generation (an append route's objects coalesced into shared load jobs)",
  )
  .version(version, '-V, --version', 'print the version')
  .exitOverride()
  .showHelpAfterError(false)
  .addCommand(devCommand())
  .addCommand(emitCommand())
  .addCommand(reprocessCommand())
  .addCommand(triggersCommand())
  .addCommand(grantsCommand())
  .addCommand(alertsCommand())
  .addCommand(tablesCommand())
  .addCommand(historyCommand());

program.commands.forEach((command) => command.exitOverride());

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // commander has printed its message (or the help) already
    process.exit(error.exitCode);
  }
  const kind = error instanceof ConfigError ? 'configuration error: ' : '';
  process.stderr.write(`gcs-bq-ingest: ${kind}${firstLine(errorMessage(error))}\n`);
  process.exit(1);
});
