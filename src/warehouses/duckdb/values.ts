import { bigQueryType } from './catalog';
import { literal } from './sql';

/**
 * The text BigQuery's CSV loader reads as each type ("Details of loading CSV data",
 * https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-csv), as RE2 patterns that must
 * match a whole value. DuckDB's own casts take more (`2.5` into BIGINT rounds, `0x10` and `1_000`
 * are numbers, a DATE drops a time, a bad TIMESTAMPTZ reads as NULL), so these columns are read as
 * text and cast only once they match. NUMERIC and BIGNUMERIC take the digits their DuckDB DECIMAL
 * holds, which DuckDB would otherwise round.
 */
const FORMS: Record<string, string> = {
  INT64: '[+-]?[0-9]+',
  FLOAT64: '(?i)[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(e[+-]?[0-9]+)?|[+-]?(inf|infinity|nan)',
  NUMERIC: '[+-]?([0-9]{1,29}(\\.[0-9]{0,9})?|\\.[0-9]{1,9})',
  BIGNUMERIC: '[+-]?([0-9]{1,20}(\\.[0-9]{0,18})?|\\.[0-9]{1,18})',
  BOOL: '(?i)true|false|t|f|yes|no|y|n|1|0',
  DATE: '[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}',
  DATETIME:
    '[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}[ T]([01]?[0-9]|2[0-3]):[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?',
  TIME: '([01]?[0-9]|2[0-3]):[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?',
  // A date and a time with an optional zone, or (given a schema) seconds since the Unix epoch.
  TIMESTAMP:
    '([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2})[ T]([01]?[0-9]|2[0-3]):[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?' +
    '( ?(Z|UTC)| ?[+-][0-9]{1,2}(:?[0-9]{2})?)?|[+-]?[0-9]+(\\.[0-9]{1,6})?',
};

/** Whether a column of this DuckDB type is read as text and checked before it is cast. */
export function isChecked(type: string): boolean {
  return FORMS[bigQueryType(type)] !== undefined;
}

/**
 * The value of `name` (text) as `type`, or NULL when it is not what BigQuery reads as that type.
 * A TIMESTAMP's text is brought to a form DuckDB casts: `-` between date parts, no `UTC` or `Z`
 * (DuckDB, without its ICU extension, reads a time without a zone as UTC, as BigQuery does) and no
 * space before an offset. `matches`: the text is known to be in such a form.
 */
export function convertedValue(name: string, type: string, matches = false): string {
  const form = FORMS[bigQueryType(type)];
  if (form === undefined) return name;
  const matched = matches
    ? name
    : `CASE WHEN regexp_full_match(${name}, ${literal(form)}) THEN ${name} END`;
  if (bigQueryType(type) !== 'TIMESTAMP') return `TRY_CAST(${matched} AS ${type})`;
  const text = `regexp_replace(replace(${matched}, '/', '-'), '^([^ T]+[ T][0-9:.]+) ?(Z|UTC)? ?', '\\1')`;
  const epoch = `make_timestamp(CAST(TRY_CAST(${matched} AS DECIMAL(38,6)) * 1000000 AS BIGINT))`;
  return `CASE WHEN contains(${name}, ':') THEN TRY_CAST(${text} AS ${type}) ELSE CAST(${epoch} AS ${type}) END`;
}

/** Why a value of `name` cannot load into the column (SQL text), for a value `convertedValue` refused. */
export function refusal(column: { name: string; type: string }, name: string): string {
  const type = literal(` as ${bigQueryType(column.type)} for column "${column.name}"`);
  return `'could not parse "' || left(${name}, 100) || '"' || ${type}`;
}
