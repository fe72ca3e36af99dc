import type { Storage } from '@google-cloud/storage';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { TransientError, errorMessage } from '../../core/errors';
import { gsUri, type StoredObject } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import type { BigQueryContext } from './context';
import { toWarehouseError } from './errors';
import { findJob } from './jobs';

/** Why a gzip source cannot load whole, or undefined when every gzip source ends as it must. */
export async function truncatedGzip(
  ctx: BigQueryContext,
  job: LoadJob,
): Promise<string | undefined> {
  const gzipped = job.sources.filter((source) => /\.gz$/i.test(source.name));
  // An earlier delivery that inserted the job checked its sources.
  if (gzipped.length === 0 || (await findJob(ctx, job.jobId, job))) return undefined;
  for (const source of gzipped) {
    const signal = AbortSignal.any([
      ctx.stopping.signal,
      AbortSignal.timeout(Math.max(job.deadline - Date.now(), 0)),
    ]);
    const problem = await checkGzip(ctx.storageClient(), source, signal);
    if (problem) return problem;
  }
  return undefined;
}

/** Why `object`, a `.gz` source, cannot join a coalesced job; undefined when it can. */
export function precheckGzip(
  ctx: BigQueryContext,
  object: StoredObject,
  deadline: number,
): Promise<string | undefined> {
  if (!/\.gz$/i.test(object.name)) return Promise.resolve(undefined);
  const signal = AbortSignal.any([
    ctx.stopping.signal,
    AbortSignal.timeout(Math.max(deadline - Date.now(), 0)),
  ]);
  return checkGzip(ctx.storageClient(), object, signal);
}

/**
 * Reads a gzip source through gunzip to its end, keeping nothing: the reason it is not a complete gzip
 * stream (as `gzip -t` words it), or undefined.
 */
export async function checkGzip(
  storage: Storage,
  object: StoredObject,
  signal: AbortSignal,
): Promise<string | undefined> {
  const file = storage.bucket(object.bucket).file(object.name, { generation: object.generation });
  const source = file.createReadStream({ decompress: false, validation: false });
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  try {
    await pipeline(source, zlib.createGunzip(), discard, { signal });
    return undefined;
  } catch (error) {
    const uri = gsUri(object);
    if (signal.aborted) {
      const why = signal.reason instanceof TransientError ? signal.reason.message : 'out of time';
      throw new TransientError(`checking gzip stream ${uri}: ${why}`, { cause: error });
    }
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      return `${uri} is not a complete gzip stream (${errorMessage(error)}); nothing of it was loaded`;
    }
    throw toWarehouseError(error, `reading ${uri} to check its gzip stream`);
  }
}
