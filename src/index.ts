import * as functions from '@google-cloud/functions-framework';
import * as fs from 'node:fs';
import { createReceiver } from './app';
import { createBackend, type Backend } from './backend';
import { loadConfig, type Config } from './config';
import { ConfigError } from './errors';
import { installJsonFinalHandler, takeOverShutdown } from './framework';
import { createLogger } from './log';

// The entry module: the Functions Framework loads it and serves the `ingest` target.
const logger = createLogger(process.env.LOG_LEVEL ?? 'info');
const config = startupConfig();
const graceMs = Number(process.env.INGEST_SHUTDOWN_GRACE_SECONDS ?? 10) * 1000;

let backend: Promise<Backend> | undefined;
const services = () => (backend ??= createBackend(config));
const receiver = createReceiver(config, services, logger);

installJsonFinalHandler(config.maxBodyBytes);
takeOverShutdown((server, signal) => {
  logger.info(
    `${signal}: finishing in-flight events (up to ${graceMs / 1000} s), refusing new ones with 503`,
  );
  void receiver
    .drain(graceMs)
    .then(() => server.close())
    .then(async () => (backend ? (await backend).close() : undefined))
    .catch((error: unknown) => logger.error({ err: error }, 'shutdown did not complete cleanly'))
    .finally(() => process.exit(0));
});

functions.http('ingest', (req, res) => {
  // The framework runs each request inside a Node `domain` (deprecated) only to turn a stray throw
  // into a 500. The receiver answers every error itself, and every async step inside a domain pays
  // to enter and leave it: leaving it here measurably raises throughput (see README, Performance).
  (process as NodeJS.Process & { domain?: { exit(): void } }).domain?.exit();
  return receiver.handle(req, res);
});

// Started by `gcs-bq-ingest dev` with an IPC channel: when that process goes, however it goes, stop too.
if (process.connected) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));

function startupConfig(): Config {
  try {
    return loadConfig(process.env, (file) => fs.readFileSync(file, 'utf8'));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // One line, then stop: a bad configuration must never wait for the first event.
    process.stderr.write(`gcs-bq-ingest: configuration error: ${error.message}\n`);
    process.exit(1);
  }
}
