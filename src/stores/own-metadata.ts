import { gsUri, type StoredObject } from './store';

/**
 * Custom metadata that holds for one generation of one object. Cloud Storage copies custom metadata
 * along with the object (`objects.copy` and `objects.rewrite` keep the source's unless the request
 * gives the destination's, and `gcloud storage cp` and `mv` use them), so a copy of a loaded object
 * would arrive with its source's record. The value therefore names the generation it belongs to.
 */
export function ownMetadataValue(object: StoredObject, fields: Record<string, string>): string {
  return JSON.stringify({ ...fields, object: generationUri(object) });
}

/** The fields of a value `ownMetadataValue` wrote for this very generation; else undefined. */
export function readOwnMetadata(
  object: StoredObject,
  value: string | undefined,
): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  return fields.object === generationUri(object) ? fields : undefined;
}

/** `gs://bucket/name#generation`. */
export function generationUri(object: StoredObject): string {
  return `${gsUri(object)}#${object.generation}`;
}
