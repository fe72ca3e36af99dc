import { RequestError } from '../core/errors';
import { isBucketName } from '../core/names';

export function checkBucket(bucket: string, where: string): void {
  if (!isBucketName(bucket)) {
    throw new RequestError(`${where}: "${printable(bucket)}" is not a valid bucket name`);
  }
}

/**
 * A name Cloud Storage cannot hold is a malformed field (400). Every name it can hold is accepted here,
 * on events and messages alike, as a prefix reprocess would list it: what a store cannot do with one
 * (the local folder cannot hold `a/../b.csv`) is that store's answer, never a 400 that a push
 * subscription would redeliver until the dead-letter topic.
 */
export function checkName(name: string, where: string): void {
  const problem = nameProblem(name);
  if (problem) throw new RequestError(`${where}: object name "${printable(name)}" ${problem}`);
}

/**
 * Cloud Storage's object naming requirements (https://cloud.google.com/storage/docs/objects#naming):
 * 1-1,024 bytes of UTF-8, no carriage return or line feed, not "." or "..", not under
 * ".well-known/acme-challenge/".
 */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name, 'utf8') > 1024) return 'is longer than 1024 bytes';
  if (/[\r\n]/.test(name)) return 'contains a line break, which Cloud Storage never allows';
  if (name === '.' || name === '..') return 'is "." or ".."';
  if (name.startsWith('.well-known/acme-challenge/'))
    return 'starts with ".well-known/acme-challenge/"';
  return undefined;
}

/** A prefix names no object itself: only what no object name can contain is refused. */
export function checkPrefix(prefix: string, where: string): void {
  if (Buffer.byteLength(prefix, 'utf8') > 1024 || /[\r\n]/.test(prefix)) {
    throw new RequestError(
      `${where}: prefix "${printable(prefix)}" is longer than 1024 bytes or contains a carriage return or line feed`,
    );
  }
}

function printable(text: string): string {
  const shown = text.replace(
    /[\u0000-\u001f\u007f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return shown.length > 200 ? `${shown.slice(0, 200)}…` : shown;
}
