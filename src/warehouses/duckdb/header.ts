import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { CsvOptions } from '../../config';
import { errorMessage } from '../../errors';
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
  const skipLines = Math.max(job.csv.skipLeadingRows - 1, 0);
  const input = createReadStream(file, { start: 0 });
  const stream = compressionOf(source) === 'gzip' ? input.pipe(createGunzip()) : input;
  const chunks: Buffer[] = [];
  let size = 0;
  const parse = (final: boolean) =>
    parseRecord(decode(Buffer.concat(chunks), job.csv, final), job.csv, skipLines, final);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      const record = parse(false);
      if (record) return record;
      if (size > MAX_HEADER_BYTES)
        throw new Rejection(`the header row is longer than ${MAX_HEADER_BYTES} bytes`);
    }
    const record = parse(true);
    if (!record) throw new Rejection('no data rows');
    return record;
  } catch (error) {
    if (error instanceof Rejection) throw new Rejection(`${error.message} (${gsUri(source)})`);
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'ERR_ENCODING_INVALID_ENCODED_DATA')
      throw new Rejection(`invalid UTF-8 in the header row of ${gsUri(source)}`);
    if (code.startsWith('Z_'))
      throw new Rejection(`not valid gzip data: ${errorMessage(error)} (${gsUri(source)})`);
    throw error;
  } finally {
    input.destroy();
  }
}

function decode(bytes: Buffer, csv: CsvOptions, final: boolean): string {
  if (csv.encoding === 'ISO-8859-1') return bytes.toString('latin1');
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: !final });
}

/**
 * The first record after `skipLines` lines, or undefined when more text is needed (or, when `final`,
 * there is none). Quotes follow RFC 4180: a quote opens a field and is escaped by doubling.
 */
function parseRecord(
  text: string,
  csv: CsvOptions,
  skipLines: number,
  final: boolean,
): string[] | undefined {
  let i = 0;
  for (let skipped = 0; skipped < skipLines; skipped += 1) {
    const newline = text.indexOf('\n', i);
    if (newline < 0) return undefined;
    i = newline + 1;
  }
  if (i >= text.length) return undefined;
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  for (; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch !== csv.quote) {
        field += ch;
      } else if (text[i + 1] === csv.quote) {
        field += ch;
        i += 1;
      } else if (i + 1 >= text.length && !final) {
        return undefined; // the next chunk may start with the second quote of an escaped pair
      } else {
        quoted = false;
      }
    } else if (ch === csv.quote && field === '' && !wasQuoted) {
      quoted = wasQuoted = true;
    } else if (ch === csv.delimiter) {
      fields.push(field);
      field = '';
      wasQuoted = false;
    } else if (ch === '\n' || ch === '\r') {
      return [...fields, field];
    } else {
      field += ch;
    }
  }
  if (!final) return undefined;
  if (quoted) throw new Rejection('unterminated quote in the header row');
  return [...fields, field];
}
