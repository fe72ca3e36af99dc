import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { describeAnswer, finalizedEvent, sendEvent } from './events';
import { localObjectName, readConfig, statObject } from './context';
import { errorMessage } from '../errors';

const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEMO_SOURCE = path.join(PACKAGE_ROOT, 'fixtures', 'us-states.csv');

export function devCommand(): Command {
  return new Command('dev')
    .description('run the receiver on the local backend, with a folder watcher acting as Eventarc')
    .option('--port <port>', 'listen port', process.env.PORT ?? '8080')
    .action(async (options: { port: string }) => {
      const env = { ...process.env, INGEST_BACKEND: 'local', PORT: options.port };
      const config = readConfig(env); // a bad configuration stops here, before anything starts
      const dataDir = path.resolve(config.localDataDir);
      const buckets = path.join(dataDir, 'buckets');
      seedDemo(dataDir);
      const url = `http://localhost:${options.port}/`;
      const server = startReceiver(env);
      const exited = new Promise<number>((resolve) => server.once('exit', (c) => resolve(c ?? 0)));
      // The watcher is closed once the receiver has exited, below.
      const stop = () => server.kill('SIGTERM');
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await waitForHealth(url, server);
      console.log(`receiver on ${url} (local backend, data in ${dataDir})`);
      console.log(
        `watching ${buckets}: copy a CSV to ${path.join(buckets, '<bucket>', '<path>.csv')} to load it`,
      );

      const { watch } = await import('chokidar');
      const files = watch(buckets, {
        ignoreInitial: false,
        awaitWriteFinish: { stabilityThreshold: 150, pollInterval: 25 },
        ignored: (file) => isIgnored(buckets, file, config.quarantinePrefix),
      });
      const onFile = (file: string) => void deliver(url, config, file);
      files.on('add', onFile).on('change', onFile);
      files.on('error', (error) => console.error(`watcher: ${errorMessage(error)}`));
      const code = await exited;
      await files.close();
      process.exitCode = code;
    });
}

/** Copies the demo CSV on the first run only, so that deleting it is respected. */
function seedDemo(dataDir: string): void {
  const marker = path.join(dataDir, '.demo-seeded');
  if (fs.existsSync(marker)) return;
  const target = path.join(dataDir, 'buckets', 'demo', 'us-states.csv');
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (!fs.existsSync(target)) fs.copyFileSync(DEMO_SOURCE, target);
  fs.writeFileSync(marker, `seeded ${new Date().toISOString()}\n`);
}

function startReceiver(env: NodeJS.ProcessEnv): ChildProcess {
  const framework = path.join(
    path.dirname(require.resolve('@google-cloud/functions-framework')),
    'main.js',
  );
  // The receiver logs JSON for Cloud Logging; here the watcher prints one readable line per outcome.
  return spawn(
    process.execPath,
    [framework, '--target=ingest', '--signature-type=http', `--source=${PACKAGE_ROOT}`],
    {
      env: { LOG_LEVEL: 'error', NODE_ENV: 'production', ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
}

async function waitForHealth(url: string, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`the receiver stopped (${server.exitCode ?? server.signalCode})`);
    }
    try {
      if ((await fetch(new URL('health', url))).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  server.kill();
  throw new Error(`the receiver did not answer on ${url}health within 30 s`);
}

function isIgnored(buckets: string, file: string, quarantinePrefix: string): boolean {
  const relative = path.relative(buckets, file).split(path.sep);
  const name = relative.slice(1).join('/');
  return (
    relative.some((part) => part.startsWith('.')) ||
    (name !== '' && name.startsWith(quarantinePrefix))
  );
}

async function deliver(
  url: string,
  config: ReturnType<typeof readConfig>,
  file: string,
): Promise<void> {
  try {
    const { bucket, name } = localObjectName(config.localDataDir, file);
    const object = await statObject(config, bucket, name);
    for (const line of describeAnswer(await sendEvent(url, finalizedEvent(object))))
      console.log(line);
  } catch (error) {
    console.error(`${file}: ${errorMessage(error)}`);
  }
}
