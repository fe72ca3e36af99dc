import * as path from 'node:path';
import { LATIN1_HINT } from '../../config';
import { TransientError, errorMessage, firstLine } from '../../core/errors';
import { gsUri } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import { bigQueryType } from './catalog';
import type { Target } from './sql';

const CSV_PROBLEM =
  /^(Error when converting column|Value with unterminated quote|Expected Number of Columns|Invalid unicode|Maximum line size|Line does not fit|Could not convert)/;

/** The data cannot load: becomes a `rejected` result. */
export class Rejection extends Error {}

/** Why the data cannot load, or undefined when the error is not about the data. */
export function rejectionReason(error: unknown, job: LoadJob, paths: string[]): string | undefined {
  if (error instanceof Rejection) return oneLine(error.message);
  if (error instanceof TransientError || !(error instanceof Error)) return undefined;
  const message = error.message;
  if (/^IO Error/.test(message) && !/gzip|compress/i.test(message)) return undefined;
  if (!/^(Invalid Input|Conversion|Constraint|Out of Range|Binder|Catalog|IO) Error/.test(message))
    return undefined;
  return duckDbReason(message, job, paths);
}

/**
 * DuckDB's CSV errors span many lines (the offending line, fixes, the dialect); keep what is wrong and
 * where: `Error when converting column "a". ... (line 3 of gs://b/x.csv)`.
 */
function duckDbReason(message: string, job: LoadJob, paths: string[]): string {
  const lines = message.split('\n').map((line) => line.trim());
  const first = (lines[0] ?? '').replace(/^[A-Za-z ]+ Error: /, '');
  const file = lines.find((line) => line.startsWith('file = '))?.slice('file = '.length);
  const uri = file === undefined ? job.sources.map(gsUri).join(', ') : uriForPath(job, paths, file);
  const line = /^CSV Error on Line: (\d+)/.exec(first)?.[1];
  if (line === undefined) return oneLine(`${first} (${uri})`);
  // The offending line is quoted in between and may itself span lines, so look for what DuckDB says.
  const detail =
    lines.find((l) => CSV_PROBLEM.test(l)) ??
    lines.slice(1).find((l) => l !== '' && !l.startsWith('Original Line:')) ??
    first;
  const hint =
    job.csv.encoding === 'UTF-8' && /^Invalid unicode/.test(detail) ? `; ${LATIN1_HINT}` : '';
  return oneLine(`${inBigQueryTerms(detail)} (line ${line} of ${uri})${hint}`);
}

/** A value that does not convert, named with the table's type as BigQuery names it. */
function inBigQueryTerms(detail: string): string {
  const conversion =
    /^Error when converting column "(.*)"\. Could not convert string "(.*)" to '([^']+)'$/.exec(
      detail,
    );
  if (!conversion) return detail;
  const [, column, value, type] = conversion;
  return `could not parse "${value}" as ${bigQueryType(type ?? '')} for column "${column}"`;
}

/** The gs:// URI of the source DuckDB read as `file`. */
export function uriForPath(job: LoadJob, paths: string[], file: string): string {
  const index = paths.findIndex((p) => p === file || path.resolve(p) === path.resolve(file));
  const source = job.sources[index];
  return source ? gsUri(source) : path.basename(file);
}

export function uriOf(job: LoadJob, index: number): string {
  const source = job.sources[index];
  return source ? gsUri(source) : '(no source)';
}

/** A failure that is not about the data, as a TransientError when a redelivery may get past it. */
export function asWarehouseError(error: unknown, job: LoadJob, target: Target): Error {
  if (error instanceof TransientError) return error;
  const message = `DuckDB load ${job.jobId} into ${target.id} failed: ${firstLine(errorMessage(error))}`;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const transient =
    /^(IO|Out of Memory|TransactionContext) Error|Could not set lock/.test(errorMessage(error)) ||
    code === 'ENOENT' ||
    code === 'ELOOP' ||
    code === 'EIO' ||
    code === 'EMFILE';
  return transient
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
