import { lstatSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../core/errors';
import { nameProblem } from '../objects/object-names';
import { createLocalStore, generationProblem } from '../stores/local';
import type { ObjectStore, StoredObject } from '../stores/store';
import { createDelivery, type Delivery } from './delivery';
import { createFinalityGate, type FinalityGate } from './finality';
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

/** What the watcher, the scans and the handling of one file share. */
interface EventarcParts {
  options: LocalEventarcOptions;
  store: ObjectStore;
  gate: FinalityGate;
  delivery: Delivery;
  /** Object generations settled or being sent: a second event for one of them sends nothing. */
  known: Set<string>;
  warnOnce(key: string, line: string): void;
  warnSymlink(file: string): void;
  /** Whether a path is none of the watched objects' (warned once for an invalid bucket). */
  ignored(file: string): boolean;
  fileOf(object: { bucket: string; name: string }): string;
}

/**
 * Plays Eventarc for the buckets folder: one `finalized` event per object generation, sent once the
 * file counts as finalized, redelivered on a 5xx or no answer. Resolves once the watcher is ready.
 */
export async function startLocalEventarc(options: LocalEventarcOptions): Promise<LocalEventarc> {
  const parts = createParts(options);
  const { watcher, rescans } = await watchBuckets(parts);
  return {
    scan: () => scan(parts),
    async stop() {
      for (const timer of rescans) clearTimeout(timer);
      const waiting = parts.gate.waiting();
      parts.gate.close();
      await watcher.close();
      const unsent = await parts.delivery.stop();
      const pending = waiting.map(
        (file) => `gs://${path.relative(options.buckets, file).split(path.sep).join('/')}`,
      );
      return [...new Set([...unsent, ...pending])].sort();
    },
  };
}

function createParts(options: LocalEventarcOptions): EventarcParts {
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
  const known = new Set(options.settled);
  return { options, store, gate, delivery, known, warnOnce, warnSymlink, ignored, fileOf };
}

/** Watches the buckets folder, each new or changed file handled as an event; resolves once it is ready. */
async function watchBuckets(parts: EventarcParts) {
  const { options } = parts;
  const { watch } = await import('chokidar');
  // A link is reported as itself (and warned about), never followed.
  const watcher = watch(options.buckets, {
    ignoreInitial: true,
    ignored: parts.ignored,
    followSymlinks: false,
  });
  const rescans = new Set<NodeJS.Timeout>();
  watcher.on('add', (file) => void handleFile(parts, file, false));
  watcher.on('change', (file) => void handleFile(parts, file, false));
  // chokidar reads a new folder before it watches it: a file created in between has no event. Read
  // the folder again once it is watched (already known objects are not sent twice).
  watcher.on('addDir', (dir) => {
    for (const delay of RESCAN_NEW_FOLDER_MS) {
      const timer = setTimeout(() => {
        rescans.delete(timer);
        void scanFolder(parts, dir, false, { settled: 0, skipped: 0, sent: 0 });
      }, delay);
      rescans.add(timer);
    }
  });
  watcher.on('error', (error) => options.warn(`watcher: ${errorMessage(error)}`));
  await new Promise<void>((resolve) => watcher.once('ready', resolve));
  return { watcher, rescans };
}

/** Sends the file's object unless it is known already ('known'); resolves with its outcome. */
async function handleFile(
  parts: EventarcParts,
  file: string,
  startup: boolean,
): Promise<string | undefined> {
  const object = await finalObjectAt(parts, file);
  if (!object) return undefined;
  const { known } = parts;
  const key = settledKey(object);
  if (known.has(key)) return 'known';
  known.add(key);
  const outcome = await parts.delivery.send(object, { quietSkip: startup });
  if (outcome === undefined) known.delete(key);
  return outcome;
}

/** The object at `file` once the file counts as finalized; undefined (warned once) when it cannot load. */
async function finalObjectAt(
  parts: EventarcParts,
  file: string,
): Promise<StoredObject | undefined> {
  const { options, warnOnce } = parts;
  const [bucket, ...rest] = path.relative(options.buckets, file).split(path.sep);
  if (bucket === undefined || rest.length === 0) {
    const line = `ignoring ${file}: objects go in ${path.join(options.buckets, '<bucket>', '<name>')}`;
    warnOnce(file, line);
    return undefined;
  }
  const badName = nameProblem(rest.join('/'));
  if (badName !== undefined) {
    warnOnce(file, `ignoring ${JSON.stringify(file)}: its name ${badName}: rename the file`);
    return undefined;
  }
  if (lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink()) {
    parts.warnSymlink(file);
    return undefined;
  }
  if (!(await parts.gate.whenFinal(file))) return undefined;
  let object: StoredObject | undefined;
  try {
    object = await parts.store.stat(bucket, rest.join('/'));
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
  return object;
}

/** Sends the objects under `dir` (a bucket folder or one inside it) that are not yet known. */
async function scanFolder(
  parts: EventarcParts,
  dir: string,
  startup: boolean,
  summary: ScanSummary,
): Promise<void> {
  const [bucket, ...rest] = path.relative(parts.options.buckets, dir).split(path.sep);
  if (bucket === undefined || bucket === '' || parts.ignored(dir)) return;
  const prefix = rest.length > 0 ? `${rest.join('/')}/` : '';
  const handled: Promise<void>[] = [];
  try {
    for await (const object of parts.store.list(bucket, prefix)) {
      const file = parts.fileOf(object);
      if (parts.ignored(file)) continue;
      if (parts.known.has(settledKey(object))) {
        summary.settled += 1;
        continue;
      }
      handled.push(
        handleFile(parts, file, startup).then((outcome) => {
          if (outcome === 'skipped') summary.skipped += 1;
          else if (outcome !== undefined && outcome !== 'known') summary.sent += 1;
        }),
      );
    }
  } catch (error) {
    if (startup) parts.options.warn(`${dir}: ${errorMessage(error)}`);
  }
  await Promise.all(handled);
}

async function scan(parts: EventarcParts): Promise<ScanSummary> {
  const { buckets } = parts.options;
  const summary: ScanSummary = { settled: 0, skipped: 0, sent: 0 };
  const handled: Promise<unknown>[] = [];
  for (const entry of await fs.readdir(buckets, { withFileTypes: true })) {
    const top = path.join(buckets, entry.name);
    if (parts.ignored(top)) continue;
    if (entry.isDirectory()) handled.push(scanFolder(parts, top, true, summary));
    else handled.push(handleFile(parts, top, true));
  }
  await Promise.all(handled);
  return summary;
}
