import { open } from 'node:fs/promises';
import { HEAD_BYTES, decode, inflateHead, recordAt } from '../../header';
import { gsUri } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import { compressionOf } from './csv';
import { Rejection, uriOf } from './errors';

// The header row is read here because DuckDB's sniffer guesses it, and a guess is not good enough.

const MAX_HEADER_BYTES = 1024 * 1024;

/** The column names in the header of source `index`: trimmed, blanks named string_field_N, unique. */
export async function headerNames(job: LoadJob, paths: string[], index: number): Promise<string[]> {
  const record = await firstRecord(job, paths, index);
  const names = record.map((name, i) => (name.trim() === '' ? `string_field_${i}` : name.trim()));
  const seen = new Set<string>();
  for (const name of names) {
    if (name.includes('\0')) {
      throw new Rejection(
        `a column name in the header of ${uriOf(job, index)} contains a NUL character`,
      );
    }
    if (seen.has(name.toLowerCase())) {
      throw new Rejection(`duplicate column name "${name}" in the header of ${uriOf(job, index)}`);
    }
    seen.add(name.toLowerCase());
  }
  return names;
}

/** The first record after the skipped lines of source `index`: the header row, or the first row. */
export async function firstRecord(job: LoadJob, paths: string[], index: number): Promise<string[]> {
  const source = job.sources[index];
  const file = paths[index];
  if (!source || file === undefined) throw new Error(`job ${job.jobId} has no source ${index}`);
  const uri = gsUri(source);
  const gzip = compressionOf(source) === 'gzip';
  // Most headers are within the head the service reads; a longer one gets one more, larger read.
  for (const limit of [HEAD_BYTES, MAX_HEADER_BYTES]) {
    const { bytes, complete } = await readPrefix(file, limit);
    const inflated = await inflateHead(bytes, complete, gzip, limit);
    if ('error' in inflated) throw new Rejection(`${inflated.error} (${uri})`);
    const text = decode(inflated.bytes, job.csv.encoding, inflated.complete);
    if (typeof text !== 'string') {
      throw new Rejection(`invalid UTF-8 in the header row of ${uri} (${text.error})`);
    }
    const record = await recordAt(
      text,
      inflated.complete,
      job.csv,
      Math.max(job.csv.skipLeadingRows - 1, 0),
    );
    if (record !== undefined && !Array.isArray(record)) {
      throw new Rejection(`malformed header row in ${uri}: ${record.error}`);
    }
    if (record) return record;
    if (inflated.complete) throw new Rejection(`no data rows (${uri})`);
  }
  throw new Rejection(`the header row is longer than ${MAX_HEADER_BYTES} bytes (${uri})`);
}

/** At most `limit` bytes from the start of a file; `complete` when that is all of it. */
async function readPrefix(
  file: string,
  limit: number,
): Promise<{ bytes: Buffer; complete: boolean }> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(limit + 1);
    const { bytesRead } = await handle.read(buffer, 0, limit + 1, 0);
    return { bytes: buffer.subarray(0, Math.min(bytesRead, limit)), complete: bytesRead <= limit };
  } finally {
    await handle.close();
  }
}
