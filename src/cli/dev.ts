import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { localWarehouseFile } from '../receiver/backend';
import { errorMessage, firstLine } from '../core/errors';
import { readConfig } from './context';
import { claimDataDir } from './dev-lock';
import { startLocalEventarc, type ScanSummary } from './local-eventarc';
import { checkPortFree, parsePort } from './port';
import { startReceiver } from './receiver';
import { readSettledKeys } from './settled';

const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEMO_SOURCE = path.join(PACKAGE_ROOT, 'fixtures', 'us-states.csv');

export function devCommand(): Command {
  return new Command('dev')
    .description('run the receiver on the local backend, with a folder watcher acting as Eventarc')
    .addOption(
      new Option('--port <port>', 'listen port').env('PORT').default(8080).argParser(parsePort),
    )
    .action(async (options: { port: number }) => {
      const env = { ...process.env, INGEST_BACKEND: 'local', PORT: String(options.port) };
      const config = readConfig(env); // a bad configuration stops here, before anything starts
      await checkPortFree(options.port); // before anything is sent to whatever holds it
      const dataDir = path.resolve(config.localDataDir);
      const unclaim = claimDataDir(dataDir, `http://localhost:${options.port}/`);
      process.once('exit', unclaim);
      const buckets = path.join(dataDir, 'buckets');
      seedDemo(dataDir);
      fs.mkdirSync(buckets, { recursive: true });
      const settled = await readSettledKeys(localWarehouseFile(config)).catch((error: unknown) => {
        console.error(
          `the ledger cannot be read (${firstLine(errorMessage(error))}): every object is sent again`,
        );
        return new Set<string>();
      });

      const receiver = await startReceiver(env, options.port);
      let stopping = false;
      const stopRequested = new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      void stopRequested.then(() => receiver.process.kill('SIGTERM'));
      const url = `http://localhost:${options.port}/`;
      console.log(`receiver on ${url} (local backend, data in ${dataDir})`);
      console.log(`status page: ${url} (open it in a browser)`);

      const eventarc = await startLocalEventarc({
        buckets,
        quarantinePrefix: config.quarantinePrefix,
        dataDir,
        url,
        settled,
        print: (line) => console.log(line),
        warn: (line) => console.error(line),
      });
      // Stopping (or a receiver that stopped by itself) ends redelivery at once; what is still in
      // flight gets its answer, typically a 503 from the receiver's shutdown.
      const stopped = Promise.race([stopRequested, receiver.exited]).then(() => {
        stopping = true;
        return eventarc.stop();
      });
      console.log(
        `watching ${buckets}: copy a CSV to ${path.join(buckets, '<bucket>', '<path>.csv')} to load it`,
      );
      void eventarc.scan().then(
        (summary) => !stopping && console.log(describeScan(summary)),
        (error: unknown) => console.error(`start-up scan: ${errorMessage(error)}`),
      );

      const code = await receiver.exited;
      const unsent = await stopped;
      if (unsent.length > 0) console.log(describeUnsent(unsent));
      process.exitCode = code;
    });
}

export function describeScan(summary: ScanSummary): string {
  return `start-up scan: ${summary.settled} already loaded or rejected (not sent again), ${summary.sent} sent, ${summary.skipped} skipped`;
}

export function describeUnsent(uris: string[]): string {
  const shown = uris.slice(0, 5).join(', ');
  const more = uris.length > 5 ? ` and ${uris.length - 5} more` : '';
  const objects = uris.length === 1 ? '1 object was' : `${uris.length} objects were`;
  return `stopped: ${objects} not loaded and will be sent again on the next start: ${shown}${more}`;
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
