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
