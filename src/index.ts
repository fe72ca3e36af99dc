import * as functions from '@google-cloud/functions-framework';
import * as fs from 'node:fs';
import { createReceiver } from './receiver/app';
import { createBackend, type Backend } from './receiver/backend';
import { loadConfig, type Config } from './config';
import { ConfigError } from './core/errors';
import {
  installJsonFinalHandler,
  serveWithoutDomains,
  takeOverShutdown,
} from './receiver/framework';
import { createLogger } from './receiver/log';
import { DEFAULT_GRACE_SECONDS, STEP_MS } from './receiver/shutdown';
import type * as StatusSite from './status/site';

// The entry module: the Functions Framework loads it and serves the `ingest` target.
const config = startupConfig();
const logger = createLogger(config.logLevel);
const graceMs = (config.shutdownGraceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
const { abort: ABORT_MS, settle: SETTLE_MS, flush: FLUSH_MS, close: CLOSE_MS } = STEP_MS;
let shuttingDown = false;

let backend: Promise<Backend> | undefined;
const services = () => (backend ??= createBackend(config, logger));
// The local backend also serves a status page; with gcp, `GET /` stays a JSON answer, and the page's
// modules (a few MB of a cold start's memory) are not loaded.
const pages =
  config.backend === 'local'
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./status/site') as typeof StatusSite).createStatusSite({
        config,
        backend: services,
        cwd: process.cwd(),
      })
    : undefined;
const receiver = createReceiver(config, services, logger, pages);

installJsonFinalHandler(config.maxBodyBytes);
serveWithoutDomains();
takeOverShutdown((signal) => {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info(
    `${signal}: finishing in-flight events (up to ${graceMs / 1000} s), refusing new ones with 503`,
  );
  void shutDown().then(
    (end) => (end === 'kill' ? process.kill(process.pid, 'SIGKILL') : process.exit(0)),
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown did not complete cleanly');
      process.exit(0);
    },
  );
});

/**
 * The grace is a limit: events in flight get that long, then the loads still running are stopped and
 * their events answered 503 (their redelivery loads them). Every request is answered before the exit,
 * and each later step has its own short bound, so the whole takes about the grace.
 */
async function shutDown(): Promise<'exit' | 'kill'> {
  // Objects still waiting for a load job were not claimed yet: their events go back at once.
  void backend?.then((b) => b.batches.abort('shutting down')).catch(() => undefined);
  const drained = await receiver.drain(graceMs);
  const services = backend && (await backend);
  if (!drained && services) {
    const stopped = services.warehouse.abort('shutting down: the grace period ran out');
    if (!(await within(stopped, ABORT_MS)))
      logger.warn(`loads still running ${ABORT_MS} ms after abort`);
    // Requests whose loads ended (committed or stopped) answer for themselves.
    await receiver.drain(SETTLE_MS);
  }
  const refused = receiver.refuseUnanswered(
    'shutting down before this event was handled; nothing of it was loaded, redeliver',
  );
  await receiver.answered(FLUSH_MS);
  if (refused > 0) {
    // Their loads outlived the abort: they must not commit after their events were answered 503, and
    // a normal exit lets DuckDB finish what runs. Killed, they end uncommitted, as after a crash.
    logger.warn(`${refused} events answered 503 at shutdown; ending their loads with the process`);
    return 'kill';
  }
  if (services && !(await within(services.close(), CLOSE_MS)))
    logger.warn(`the backend did not close within ${CLOSE_MS} ms`);
  return 'exit';
}

/** Whether `work` settled within `ms`; its failure is logged, not thrown. */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = work.then(
    () => true,
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown step failed');
      return true;
    },
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

functions.http('ingest', (req, res) => receiver.handle(req, res));

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
