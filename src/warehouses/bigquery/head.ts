import { TransientError } from '../../core/errors';
import { HEAD_BYTES, checkHead } from '../../schema/header';
import { gsUri, type StoredObject } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import type { SourceHead } from '../../schema/columns';
import type { BigQueryContext } from './context';
import { toWarehouseError } from './errors';

/** The first source's head, read when the job does not carry it. */
export async function readHead(
  ctx: BigQueryContext,
  job: LoadJob,
  index = 0,
): Promise<SourceHead | { problem: string }> {
  const source = job.sources[index] as StoredObject;
  const file = ctx
    .storageClient()
    .bucket(source.bucket)
    .file(source.name, { generation: source.generation });
  const what = `reading the head of ${gsUri(source)}`;
  let bytes: Buffer;
  try {
    [bytes] = await ctx.call(
      file.download({ start: 0, end: HEAD_BYTES - 1, decompress: false, validation: false }),
      what,
      job.deadline,
    );
  } catch (error) {
    if (error instanceof TransientError) throw error;
    throw toWarehouseError(error, what);
  }
  const head = await checkHead({
    head: bytes,
    complete: bytes.length >= source.size,
    gzip: /\.gz$/i.test(source.name),
    csv: job.csv,
  });
  return 'problem' in head ? { problem: `${head.problem} (${gsUri(source)})` } : head;
}
