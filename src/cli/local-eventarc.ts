import { lstatSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../core/errors';
import { nameProblem } from '../objects/object-names';
import { createLocalStore, generationProblem } from '../stores/local';
import type { StoredObject } from '../stores/store';
import { createDelivery } from './delivery';
import { createFinalityGate } from './finality';
import { settledKey } from './settled';
import { classifyPath } from './watch-paths';

/** When a new folder is read again after chokidar reports it. */
const RESCAN_NEW_FOLDER_MS = [100, 1000];

export interface LocalEventarcOptions {
  /** `<LOCAL_DATA_DIR>/buckets`, absolute. */
  buckets: string;
  quarantinePrefix: string;
  /** LOCAL_DATA_DIR, whose `buckets` folder this is. */
  dataDir: string;
  url: string;
  /** Object generations already loaded or rejected: never sent again. */
  settled: ReadonlySet<string>;
  print: (line: string) => void;
  warn: (line: string) => void;
}

export interface ScanSummary {
  settled: number;
  skipped: number;
  sent: number;
}

export interface LocalEventarc {
  /** Sends every object already in the buckets that the ledger has not settled. */
  scan(): Promise<ScanSummary>;
  /** Stops watching and redelivering; resolves with the objects left unsent, once nothing is in flight. */
  stop(): Promise<string[]>;
}

/**
 * Plays Eventarc for the buckets folder: one `finalized` event per object generation, sent once the
 * file counts as finalized, redelivered on a 5xx or no answer. Resolves once the watcher is ready.
 */
export async function startLocalEventarc(options: LocalEventarcOptions): Promise<LocalEventarc> {
  const { buckets } = options;
  const warned = new Set<string>();
  const warnOnce = (key: string, line: string) => {
    if (!warned.has(key)) options.warn(line);
    warned.add(key);
  };
  const warnSymlink = (file: string) =>
    warnOnce(
      file,
      `ignoring ${file}: a symbolic link, which the local store never follows (Cloud Storage has no links): copy the file itself into the bucket folder`,
    );
  const store = createLocalStore(options.dataDir, { onSymlink: warnSymlink });
  const ignored = (file: string) => {
    const kind = classifyPath(buckets, file, options.quarantinePrefix);
    if (kind.kind === 'invalid-bucket') warnOnce(kind.bucket, kind.warning);
    return kind.kind !== 'watch';
  };
  const fileOf = (object: { bucket: string; name: string }) =>
    path.join(buckets, object.bucket, ...object.name.split('/'));
  const gate = createFinalityGate();
  const delivery = createDelivery({
    url: options.url,
    restat: (object) => store.stat(object.bucket, object.name),
    resendHint: (object) => `gcs-bq-ingest emit ${path.relative(process.cwd(), fileOf(object))}`,
    print: options.print,
  });
  // Object generations settled or being sent: a second event for one of them sends nothing.
  const known = new Set(options.settled);

  async function handle(file: string, startup: boolean): Promise<string | undefined> {
    const [bucket, ...rest] = path.relative(buckets, file).split(path.sep);
    if (bucket === undefined || rest.length === 0) {
      const line = `ignoring ${file}: objects go in ${path.join(buckets, '<bucket>', '<name>')}`;
      warnOnce(file, line);
      return undefined;
    }
    const badName = nameProblem(rest.join('/'));
    if (badName !== undefined) {
      warnOnce(file, `ignoring ${JSON.stringify(file)}: its name ${badName}: rename the file`);
      return undefined;
    }
    if (lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink()) {
      warnSymlink(file);
      return undefined;
    }
    if (!(await gate.whenFinal(file))) return undefined;
    let object: StoredObject | undefined;
    try {
      object = await store.stat(bucket, rest.join('/'));
    } catch (error) {
      options.warn(`${file}: ${errorMessage(error)}`);
      return undefined;
    }
    if (!object) return undefined;
    const notLoadable = generationProblem(object);
    if (notLoadable !== undefined) {
      warnOnce(`${file}#${object.generation}`, `ignoring ${file}: ${notLoadable}`);
      return undefined;
    }
    const key = settledKey(object);
    if (known.has(key)) return 'known';
    known.add(key);
    const outcome = await delivery.send(object, { quietSkip: startup });
    if (outcome === undefined) known.delete(key);
    return outcome;
  }

  const { watch } = await import('chokidar');
  // A link is reported as itself (and warned about), never followed.
  const watcher = watch(buckets, { ignoreInitial: true, ignored, followSymlinks: false });
  const rescans = new Set<NodeJS.Timeout>();
  watcher.on('add', (file) => void handle(file, false));
  watcher.on('change', (file) => void handle(file, false));
  // chokidar reads a new folder before it watches it: a file created in between has no event. Read
  // the folder again once it is watched (already known objects are not sent twice).
  watcher.on('addDir', (dir) => {
    for (const delay of RESCAN_NEW_FOLDER_MS) {
      const timer = setTimeout(() => {
        rescans.delete(timer);
        void scanFolder(dir, false, { settled: 0, skipped: 0, sent: 0 });
      }, delay);
      rescans.add(timer);
    }
  });
  watcher.on('error', (error) => options.warn(`watcher: ${errorMessage(error)}`));
  await new Promise<void>((resolve) => watcher.once('ready', resolve));

  /** Sends the objects under `dir` (a bucket folder or one inside it) that are not yet known. */
  async function scanFolder(dir: string, startup: boolean, summary: ScanSummary): Promise<void> {
    const [bucket, ...rest] = path.relative(buckets, dir).split(path.sep);
    if (bucket === undefined || bucket === '' || ignored(dir)) return;
    const prefix = rest.length > 0 ? `${rest.join('/')}/` : '';
    const handled: Promise<void>[] = [];
    try {
      for await (const object of store.list(bucket, prefix)) {
        const file = fileOf(object);
        if (ignored(file)) continue;
        if (known.has(settledKey(object))) {
          summary.settled += 1;
          continue;
        }
        handled.push(
          handle(file, startup).then((outcome) => {
            if (outcome === 'skipped') summary.skipped += 1;
            else if (outcome !== undefined && outcome !== 'known') summary.sent += 1;
          }),
        );
      }
    } catch (error) {
      if (startup) options.warn(`${dir}: ${errorMessage(error)}`);
    }
    await Promise.all(handled);
  }

  async function scan(): Promise<ScanSummary> {
    const summary: ScanSummary = { settled: 0, skipped: 0, sent: 0 };
    const handled: Promise<unknown>[] = [];
    for (const entry of await fs.readdir(buckets, { withFileTypes: true })) {
      const top = path.join(buckets, entry.name);
      if (ignored(top)) continue;
      if (entry.isDirectory()) handled.push(scanFolder(top, true, summary));
      else handled.push(handle(top, true));
    }
    await Promise.all(handled);
    return summary;
  }

  return {
    scan,
    async stop() {
      for (const timer of rescans) clearTimeout(timer);
      const waiting = gate.waiting();
      gate.close();
      await watcher.close();
      const unsent = await delivery.stop();
      const pending = waiting.map(
        (file) => `gs://${path.relative(buckets, file).split(path.sep).join('/')}`,
      );
      return [...new Set([...unsent, ...pending])].sort();
    },
  };
}
