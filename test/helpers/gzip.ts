import { constants, createGzip } from 'node:zlib';

/**
 * `head + tail` gzipped, and the same stream cut where `head` ends: a full flush point, where the
 * deflate data so far is complete and only the end of the stream is missing (`gzip -t`: "unexpected
 * end of file"), as a writer that stopped mid-upload leaves it.
 */
export async function gzipCutAfter(
  head: string,
  tail: string,
): Promise<{ whole: Buffer; cut: Buffer }> {
  const gzip = createGzip();
  const chunks: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    gzip.on('end', resolve);
    gzip.on('error', reject);
  });
  gzip.write(head);
  await new Promise<void>((resolve) => gzip.flush(constants.Z_FULL_FLUSH, () => resolve()));
  const cutAt = Buffer.concat(chunks).length;
  gzip.end(tail);
  await ended;
  const whole = Buffer.concat(chunks);
  return { whole, cut: whole.subarray(0, cutAt) };
}
