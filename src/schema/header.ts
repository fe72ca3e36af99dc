import { parse } from 'fast-csv';
import * as zlib from 'node:zlib';
import { LATIN1_HINT, type CsvOptions } from '../config';

/** How much of an object the service reads itself: the rest is read by the warehouse. */
export const HEAD_BYTES = 64 * 1024;

export interface HeadInput {
  head: Buffer;
  /** The head is the whole object. */
  complete: boolean;
  gzip: boolean;
  csv: CsvOptions;
}

/** Data rows kept from the head, to detect the types of columns a table does not have yet. */
const SAMPLE_ROWS = 100;

/** What the head of an object shows: why it cannot load, or its column names and first rows. */
export type HeadCheck =
  | { problem: string }
  /** `headerOnly`: the whole object is its header, with no data row after it. */
  | { header: string[]; rows: string[][]; headerOnly?: true };

/**
 * Checks what can be checked from the first bytes of an object before a load job runs: that it is
 * text in the configured encoding and has a parsable header whose names are usable. Returns the
 * header (or `string_field_N` names when the file has none) and the data rows within the head.
 */
export async function checkHead(input: HeadInput): Promise<HeadCheck> {
  const inflated = await inflateHead(input.head, input.complete, input.gzip);
  if ('error' in inflated) return { problem: inflated.error };
  const { bytes, complete } = inflated;
  const nul = bytes.indexOf(0);
  if (nul >= 0)
    return {
      problem: `binary data: NUL byte at offset ${nul}${input.gzip ? ' (after decompression)' : ''}`,
    };
  const text = decode(bytes, input.csv.encoding, complete);
  if (typeof text !== 'string') return { problem: text.error };

  const skip = input.csv.skipLeadingRows;
  const parsed = await parseRows(text, input.csv, skip + 1 + SAMPLE_ROWS);
  // A bad data row is the load's to judge (maxBadRecords may allow it); a bad header is not.
  const headerRows = Math.max(skip, 1);
  if (parsed.error && parsed.rows.length < headerRows) {
    return { problem: `malformed CSV at record ${parsed.rows.length + 1}: ${parsed.error}` };
  }
  const headerOnly = complete && !parsed.error && skip > 0 && parsed.rows.length === skip;
  if (!parsed.error && parsed.rows.length <= skip && !headerOnly) {
    return {
      problem: complete
        ? skip > 0
          ? 'no data rows after the header'
          : 'no data rows'
        : `no complete header within the first ${HEAD_BYTES / 1024} KiB`,
    };
  }
  // Without the whole text, the last record may be cut short.
  const whole = complete && !parsed.error ? parsed.rows : parsed.rows.slice(0, -1);
  const rows = whole.slice(skip);
  if (skip === 0) {
    const width = parsed.rows[0]?.length ?? 0;
    return { header: Array.from({ length: width }, (_, i) => `string_field_${i}`), rows };
  }
  const header = columnNames(parsed.rows[skip - 1] ?? []);
  const twice = duplicateName(header);
  if (twice !== undefined) {
    return {
      problem: `duplicate column name "${twice}" in the header (BigQuery compares column names without regard to case)`,
    };
  }
  return headerOnly ? { header, rows, headerOnly } : { header, rows };
}

/** Header names as BigQuery reads them: trimmed, a blank one named `string_field_N`. */
function columnNames(record: string[]): string[] {
  return record.map((name, i) => (name.trim() === '' ? `string_field_${i}` : name.trim()));
}

/** The first header name that another before it equals, case aside, or undefined. */
function duplicateName(header: string[]): string | undefined {
  const seen = new Set<string>();
  for (const name of header) {
    const key = name.toLowerCase();
    if (seen.has(key)) return name;
    seen.add(key);
  }
  return undefined;
}

export function decode(
  bytes: Buffer,
  encoding: CsvOptions['encoding'],
  complete: boolean,
): string | { error: string } {
  if (encoding === 'ISO-8859-1') return bytes.toString('latin1');
  if (decodesAsUtf8(bytes, complete))
    return new TextDecoder('utf-8').decode(bytes, { stream: !complete });
  // The shortest prefix that fails to decode ends at the first invalid byte.
  let good = 0;
  let bad = bytes.length;
  while (bad - good > 1) {
    const mid = (good + bad) >> 1;
    if (decodesAsUtf8(bytes.subarray(0, mid), false)) good = mid;
    else bad = mid;
  }
  // `good` may end inside the sequence that turned out invalid: step back to where it starts.
  let offset = good;
  while (offset > good - 3 && offset > 0 && !decodesAsUtf8(bytes.subarray(0, offset), true))
    offset--;
  const line = bytes.subarray(0, offset).toString('latin1').split('\n').length;
  return {
    error: `not valid UTF-8: invalid byte sequence at offset ${offset} (line ${line}); ${LATIN1_HINT}`,
  };
}

/** Unless `complete`, a head cut inside a multi-byte character is not an error. */
function decodesAsUtf8(bytes: Buffer, complete: boolean): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: !complete });
    return true;
  } catch {
    return false;
  }
}

/** The head's bytes, inflated (up to `limit`) when it is gzip; `complete` when that is the whole text. */
async function inflateHead(
  head: Buffer,
  complete: boolean,
  gzip: boolean,
  limit = HEAD_BYTES,
): Promise<{ bytes: Buffer; complete: boolean } | { error: string }> {
  if (!gzip) return { bytes: head, complete };
  const inflated = await gunzipPrefix(head, limit);
  if (inflated instanceof Error) return { error: `not valid gzip data: ${inflated.message}` };
  return { bytes: inflated.bytes, complete: complete && inflated.complete };
}

// fast-csv tokenizes whatever it is given: handing it the text a piece at a time, and stopping once
// it has the rows asked for, makes finding a header cost what the header costs, not the whole head.
const PARSE_PIECE = 2048;

async function parseRows(
  text: string,
  csv: CsvOptions,
  maxRows: number,
): Promise<{ rows: string[][]; error?: string }> {
  const rows: string[][] = [];
  const parser = parse<string[], string[]>({
    delimiter: csv.delimiter,
    quote: csv.quote === '' ? null : csv.quote,
    maxRows,
    ignoreEmpty: true,
  });
  return new Promise((resolve) => {
    parser
      .on('error', (error: Error) => resolve({ rows, error: error.message }))
      .on('data', (row: string[]) => rows.push(row))
      .on('end', () => resolve({ rows }));
    for (let at = 0; at < text.length && rows.length < maxRows; at += PARSE_PIECE) {
      parser.write(text.slice(at, at + PARSE_PIECE));
    }
    parser.end();
  });
}

function gunzipPrefix(
  compressed: Buffer,
  limit: number,
): Promise<{ bytes: Buffer; complete: boolean } | Error> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const gunzip = zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const finish = (complete: boolean) => {
      if (settled) return;
      settled = true;
      gunzip.destroy();
      resolve({ bytes: Buffer.concat(chunks).subarray(0, limit), complete });
    };
    gunzip.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      // A small compressed head can inflate to a great deal: stop at the limit.
      if (total >= limit) finish(false);
    });
    gunzip.on('end', () => finish(true));
    gunzip.on('error', (error) => {
      if (settled) return;
      settled = true;
      resolve(error);
    });
    gunzip.end(compressed);
  });
}
