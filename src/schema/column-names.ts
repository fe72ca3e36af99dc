// Which header names BigQuery takes as column names ("Column names" in the schema documentation).

const MAX_NAME = 300;
const FLEXIBLE_NAME = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd} &%=+:'<>#|]+$/u;
const RESERVED_PREFIXES = [
  '_TABLE_',
  '_FILE_',
  '_PARTITION',
  '_ROW_TIMESTAMP',
  '__ROOT__',
  '_COLIDENTIFIER',
];

/** Why a header name cannot be a BigQuery column name, or undefined. */
export function badName(header: string[]): string | undefined {
  for (const name of header) {
    if (name.length > MAX_NAME)
      return `column name "${name.slice(0, 40)}…" is longer than BigQuery's ${MAX_NAME} characters`;
    if (!FLEXIBLE_NAME.test(name)) {
      const problem = `column name ${JSON.stringify(name)} has characters BigQuery does not allow in a column name`;
      const separator = likelySeparator(name);
      if (separator === undefined) return problem;
      const option = `csv.delimiter: ${JSON.stringify(separator)}`;
      return `${problem}: it looks like a file separated by ${JSON.stringify(separator)}; if it is, set ${option} on its route`;
    }
    const reserved = RESERVED_PREFIXES.find((p) => name.toUpperCase().startsWith(p));
    if (reserved) return `column name "${name}" starts with ${reserved}, which BigQuery reserves`;
  }
  return undefined;
}

/** A column separator other than the route's that splits a header name into several, if any. */
function likelySeparator(name: string): string | undefined {
  return [';', '\t', ',', '|'].find(
    (separator) => name.split(separator).filter((part) => part.trim() !== '').length > 1,
  );
}
