import { open } from 'node:fs/promises';
import { HEAD_BYTES, checkHead } from '../../schema/header';
import type { LoadJob } from '../warehouse';
import type { SourceHead } from '../../schema/columns';
import type { Reads } from './csv';
import { Rejection, uriOf } from './errors';

// The header row is read here because DuckDB's sniffer guesses it, and a guess is not good enough.

/** The column names and first rows of source `index`, checked as the service checks every head. */
export async function sourceHead(job: LoadJob, reads: Reads, index: number): Promise<SourceHead> {
  const file = reads.paths[index];
  if (file === undefined) throw new Error(`job ${job.jobId} has no source ${index}`);
  const { bytes, complete } = await readPrefix(file, HEAD_BYTES);
  const head = await checkHead({
    head: bytes,
    complete,
    gzip: reads.compressions[index] === 'gzip',
    csv: { ...job.csv, encoding: 'UTF-8' }, // see Reads
  });
  if ('problem' in head) throw new Rejection(`${head.problem} (${uriOf(job, index)})`);
  return head;
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
