import { constants, createWriteStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { generationOf } from '../../stores/local';
import { gsUri, type StoredObject } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import { compressionOf, type Reads } from './csv';
import { asWarehouseError } from './errors';
import type { Target } from './sql';

/** The open sources of a load, and what can be learned of them besides what DuckDB reads. */
export interface Sources extends Reads {
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
 * early for a whole one. The sources of an ISO-8859-1 route are handed over as UTF-8 copies.
 */
export async function openSources(
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
  target: Target,
  signal: AbortSignal,
): Promise<Sources> {
  const opened: Opened[] = [];
  let copies: string | undefined;
  const close = async () => {
    await Promise.all(opened.map((o) => o.gzip?.stop()));
    await Promise.all(opened.map((o) => o.handle.close()));
    if (copies !== undefined) await fs.rm(copies, { recursive: true, force: true });
  };
  try {
    for (const source of job.sources) {
      const file = objectPath(source);
      const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
      opened.push({ source, file, handle });
    }
    for (const o of opened) {
      if (compressionOf(o.source) === 'gzip') o.gzip = checkGzip(o.handle, gsUri(o.source));
    }
    if (job.csv.encoding === 'ISO-8859-1') {
      copies = await fs.mkdtemp(path.join(os.tmpdir(), 'ingest-latin1-'));
      return { ...(await copiedAsUtf8(opened, copies, signal)), ...checks(opened), close };
    }
  } catch (error) {
    await close();
    throw signal.aborted ? error : asWarehouseError(error, job, target);
  }
  const paths =
    process.platform === 'win32'
      ? opened.map((o) => o.file)
      : opened.map((o) => `/dev/fd/${o.handle.fd}`);
  const compressions = opened.map((o) => compressionOf(o.source));
  return { paths, compressions, ...checks(opened), close };
}

function checks(opened: Opened[]): Pick<Sources, 'changed' | 'brokenGzip'> {
  return {
    changed: async () => (await Promise.all(opened.map(changeOf))).find(Boolean),
    brokenGzip: async () => (await Promise.all(opened.map((o) => o.gzip?.verdict))).find(Boolean),
  };
}

/**
 * Copies each source, inflated, into `folder` as UTF-8, reading every byte as the code point of the
 * same number, as ISO-8859-1 defines it and BigQuery loads it. DuckDB's own latin-1 reader refuses
 * bytes 0x80-0x9F (Windows-1252's curly quotes, euro sign and dashes).
 */
async function copiedAsUtf8(opened: Opened[], folder: string, signal: AbortSignal): Promise<Reads> {
  const paths = opened.map((_, i) => path.join(folder, `${i}.csv`));
  for (const [i, o] of opened.entries()) await copyAsUtf8(o, paths[i] as string, signal);
  return { paths, compressions: paths.map(() => 'none') };
}

async function copyAsUtf8(o: Opened, file: string, signal: AbortSignal): Promise<void> {
  const input = Readable.from(chunksOf(o.handle), { objectMode: false });
  const inflate = o.gzip ? [createGunzip({ chunkSize: 256 * 1024 })] : [];
  const toUtf8 = new Transform({
    transform: (chunk: Buffer, _encoding, done) =>
      done(null, Buffer.from(chunk.toString('latin1'), 'utf8')),
  });
  const output = createWriteStream(file, { flags: 'wx' });
  try {
    await pipeline([input, ...inflate, toUtf8, output], { signal });
  } catch (error) {
    // A gzip that does not inflate is rejected for the reason its check gives once the load asks.
    if (signal.aborted || (await o.gzip?.verdict) === undefined) throw error;
  }
}

/**
 * The file's bytes by positional reads from 0, leaving the descriptor's offset to DuckDB and the
 * descriptor open: a read stream closes it when a pipeline fails.
 */
async function* chunksOf(handle: FileHandle): AsyncGenerator<Buffer> {
  for (let position = 0; ;) {
    const { bytesRead, buffer } = await handle.read(
      Buffer.allocUnsafe(1 << 20),
      0,
      1 << 20,
      position,
    );
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
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
