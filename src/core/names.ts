// Google Cloud naming rules used in more than one place.

/** Cloud Storage bucket names: 3-63 characters (222 with dots), lower-case letters, digits, - _ . */
export const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
export const BUCKET_RULE =
  '3-63 characters of lower-case letters, digits, "-", "_" and ".", starting and ending with a letter or digit';

export function isBucketName(name: string): boolean {
  return BUCKET_NAME.test(name) && !name.includes('..');
}

/** A project id; the config also accepts the older `domain:project` form. */
export const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
export const DOMAIN_PROJECT_ID = /^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

/**
 * A dataset or table name the service builds. Stricter than BigQuery, which also allows some Unicode
 * in table names: a name built from a path is accepted only when it needs no quoting anywhere, so
 * look-alikes and punctuation never reach SQL.
 */
export const BIGQUERY_NAME = /^[A-Za-z0-9_]{1,1024}$/;

/** A partition decorator: a calendar date written YYYYMMDD. */
export function isPartitionDate(yyyymmdd: string): boolean {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(yyyymmdd);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
  );
}
