import { gsUri, type StoredObject } from '../../stores/store';

/*
 * What a BigQuery load job's source URI means is not always the object it names:
 * - `*` is a wildcard ("Load CSV data from Cloud Storage", wildcard support:
 *   https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-csv), with no escape, so
 *   `gs://b/in/sales*.csv` also loads `in/sales.csv` and `in/sales-2024.csv`;
 * - consecutive slashes after `gs://` become one ("BigQuery converts multiple consecutive slashes into
 *   a single slash": https://cloud.google.com/bigquery/docs/external-data-cloud-storage and
 *   https://cloud.google.com/bigquery/docs/cloud-storage-transfer-overview), so `in//a.csv` loads
 *   `in/a.csv`.
 * A generation (`#123` at the end) is the only other syntax, and a routed name ends in `.csv`/`.csv.gz`.
 * Such an object is loaded from a copy under a name with neither, below the quarantine prefix (which is
 * never routed, and where the service may write), removed once its job has ended.
 */
const STAGING_FOLDER = '.loading/';
const MAX_NAME_BYTES = 1024;

/** Why BigQuery would read more or other than this object from its URI, or undefined. */
export function uriProblem(name: string): string | undefined {
  if (name.includes('*')) return 'BigQuery reads "*" in a source URI as a wildcard';
  if (/^\/|\/\//.test(name)) return 'BigQuery reads "//" in a source URI as "/"';
  return undefined;
}

// Every "%" is escaped too, so the copy's name maps back to exactly one object name.
const ESCAPES: Record<string, string> = { '%': '%25', '*': '%2A', '/': '%2F' };
const UNESCAPES: Record<string, string> = { '%25': '%', '%2A': '*', '%2F': '/' };

/** The name a load job reads this object under: its own, or its copy's (see above). */
export function loadName(object: StoredObject, prefix: string): string {
  if (!uriProblem(object.name)) return object.name;
  const escaped = object.name.replace(/%|\*|(?<=^|\/)\//g, (c) => ESCAPES[c] ?? c);
  return `${prefix}${STAGING_FOLDER}${object.generation}/${escaped}`;
}

/** Why the object cannot be loaded at all: a copy under a safe name would pass 1,024 bytes. */
export function unloadableName(object: StoredObject, prefix: string): string | undefined {
  const problem = uriProblem(object.name);
  if (!problem || Buffer.byteLength(loadName(object, prefix)) <= MAX_NAME_BYTES) return undefined;
  return `${gsUri(object)}: ${problem}, and its copy under a safe name would be longer than Cloud Storage's 1,024 bytes; rename the object`;
}

/** The URI a load job reads this object under. */
export function sourceUri(object: StoredObject, prefix: string): string {
  return gsUri({ bucket: object.bucket, name: loadName(object, prefix) });
}

/** The object a job's source URI stands for: a copy's URI maps back to its original. */
export function originalUri(uri: string, prefix: string): string {
  const match = /^gs:\/\/([^/]+)\/(.*)$/.exec(uri);
  const [, bucket = '', name = ''] = match ?? [];
  const copies = `${prefix}${STAGING_FOLDER}`;
  if (!match || !name.startsWith(copies)) return uri;
  const escaped = name.slice(copies.length).replace(/^[0-9]+\//, '');
  return `gs://${bucket}/${escaped.replace(/%(25|2A|2F)/g, (c) => UNESCAPES[c] ?? c)}`;
}

/** The copies among a job's source URIs, as bucket and name. */
export function copiesAmong(uris: string[], prefix: string): { bucket: string; name: string }[] {
  return uris
    .filter((uri) => originalUri(uri, prefix) !== uri)
    .map((uri) => {
      const [, bucket = '', name = ''] = /^gs:\/\/([^/]+)\/(.*)$/.exec(uri) ?? [];
      return { bucket, name };
    });
}

/** `text` with every copy's URI among `uris` replaced by its original's. */
export function withOriginalUris(text: string, uris: string[], prefix: string): string {
  let out = text;
  for (const uri of uris) {
    const original = originalUri(uri, prefix);
    if (original !== uri) out = out.split(uri).join(original);
  }
  return out;
}
