import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { generationOf } from '../../stores/local';
import { gsUri, type StoredObject } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import { compressionOf } from './csv';
import { asWarehouseError } from './errors';
import type { Target } from './sql';

/** The open sources of a load, and what can be learned of them besides what DuckDB reads. */
export interface Sources {
  /** What DuckDB reads, one per source. */
  paths: string[];
  /**
   * Why a source is no longer the generation the job names: rewritten in place, or another file
   * moved to its path. Undefined when every source is still that generation.
   */
  changed(): Promise<string | undefined>;
  /** Waits for the gzip checks; why a gzip source is broken, or undefined when all are whole. */
  brokenGzip(): Promise<string | undefined>;
  close(): Promise<void>;
}

interface Opened {
  source: StoredObject;
  file: string;
  handle: FileHandle;
  gzip?: GzipCheck;
}

/**
 * Opens every source without following a symlink and hands DuckDB `/dev/fd/N` for it: DuckDB expands
 * `*`, `?` and `[` in file names as globs, and would follow a file swapped for a link meanwhile.
 * Each gzip source is inflated alongside, on the thread pool, since DuckDB takes a stream that ends
 * early for a whole one.
 */
export async function openSources(
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
  target: Target,
): Promise<Sources> {
  const opened: Opened[] = [];
  const close = async () => {
    await Promise.all(opened.map((o) => o.gzip?.stop()));
    await Promise.all(opened.map((o) => o.handle.close()));
  };
  try {
    for (const source of job.sources) {
      const file = objectPath(source);
      const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
      opened.push({ source, file, handle });
    }
  } catch (error) {
    await close();
    throw asWarehouseError(error, job, target);
  }
  for (const o of opened) {
    if (compressionOf(o.source) === 'gzip') o.gzip = checkGzip(o.handle, gsUri(o.source));
  }
  const paths =
    process.platform === 'win32'
      ? opened.map((o) => o.file)
      : opened.map((o) => `/dev/fd/${o.handle.fd}`);
  return {
    paths,
    changed: async () => (await Promise.all(opened.map(changeOf))).find(Boolean),
    brokenGzip: async () => (await Promise.all(opened.map((o) => o.gzip?.verdict))).find(Boolean),
    close,
  };
}

async function changeOf({ source, file, handle }: Opened): Promise<string | undefined> {
  const what = `generation ${source.generation} of ${gsUri(source)}`;
  const opened = await handle.stat({ bigint: true });
  if (generationOf(opened) !== source.generation || Number(opened.size) !== source.size) {
    return `${what} was overwritten while it was read (now generation ${generationOf(opened)}), whose own event loads it`;
  }
  const current = await fs.lstat(file, { bigint: true }).catch((error: unknown) => {
    // Removed after it was opened: what was read is still that generation, whole.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  });
  if (current && (current.ino !== opened.ino || current.dev !== opened.dev)) {
    return `${what} was replaced by generation ${generationOf(current)} while it was read, whose own event loads it`;
  }
  return undefined;
}

interface GzipCheck {
  /** Why the stream is broken, or undefined when it inflates whole with nothing after it. */
  verdict: Promise<string | undefined>;
  /** Stops reading; resolves once nothing reads the handle any more. */
  stop(): Promise<void>;
}

function checkGzip(handle: FileHandle, uri: string): GzipCheck {
  // Positional reads from 0: the descriptor's offset stays DuckDB's.
  const input = handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 });
  const gunzip = createGunzip({ chunkSize: 256 * 1024 }); // large chunks: fewer callbacks
  let bytesRead = 0;
  const inputClosed = new Promise<void>((resolve) => input.once('close', resolve));
  const verdict = new Promise<string | undefined>((resolve, reject) => {
    const broken = (problem: string) => resolve(`${uri} is not a valid gzip file: ${problem}`);
    input.on('data', (chunk: Buffer | string) => {
      bytesRead += chunk.length;
    });
    input.on('error', reject); // not about the data: the load fails as DuckDB's read would
    gunzip.on('error', (error) => broken(explainZlib(error.message)));
    gunzip.on('end', () =>
      // zlib stops at the end of the last member and ignores what follows; gzip -t does not.
      resolve(
        gunzip.bytesWritten < bytesRead
          ? `${uri} is not a valid gzip file: ${bytesRead - gunzip.bytesWritten} bytes of trailing garbage`
          : undefined,
      ),
    );
    gunzip.resume();
    input.pipe(gunzip);
  });
  verdict.catch(() => undefined); // awaited by the load, unless it failed before asking
  const stop = async () => {
    input.destroy();
    gunzip.destroy();
    await inputClosed;
  };
  return { verdict, stop };
}

const ZLIB_HINTS: Record<string, string> = {
  'unexpected end of file': 'the object is incomplete',
  'incorrect data check': 'the CRC does not match',
  'incorrect header check': 'not gzip, or garbage after the gzip data',
};

function explainZlib(message: string): string {
  const hint = ZLIB_HINTS[message];
  return hint === undefined ? message : `${message} (${hint})`;
}
