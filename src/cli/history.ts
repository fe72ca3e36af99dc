import { Command, InvalidArgumentError, Option } from 'commander';
import { localWarehouseFile } from '../receiver/backend';
import type { Config } from '../config';
import {
  HISTORY_OUTCOMES,
  filterHistory,
  isHistoryOutcome,
  parseDuration,
  type HistoryEntry,
  type HistoryFilter,
  type HistoryOutcome,
} from '../history/entry';
import { readConfig } from './context';
import { DEFAULT_WAIT_SECONDS } from './tables';

interface Options {
  since: number;
  table?: string;
  outcome?: HistoryOutcome;
  json?: boolean;
}

// More than any ledger holds for a window people look at; a bound all the same.
const MAX_ENTRIES = 1_000_000;

export function historyCommand(): Command {
  return new Command('history')
    .description(
      'what was loaded or rejected: from the local ledger, or (gcp) from BigQuery job history by job labels',
    )
    .addOption(
      new Option('--since <duration>', 'how far back: 30m, 24h, 7d')
        .default(parseDuration('24h'), '24h')
        .argParser(durationArg),
    )
    .option(
      '--table <table>',
      'only this destination: table, dataset.table or project.dataset.table',
    )
    .addOption(
      new Option(
        '--outcome <outcome>',
        `only this outcome: ${HISTORY_OUTCOMES.join(', ')}`,
      ).argParser(outcomeArg),
    )
    .option('--json', 'print a JSON array instead of a table')
    .action(async (options: Options) => {
      const config = readConfig();
      const filter: HistoryFilter = {
        since: new Date(Date.now() - options.since),
        table: options.table,
        outcome: options.outcome,
      };
      const entries = filterHistory(await readHistory(config, filter.since), filter);
      if (options.json) console.log(JSON.stringify(entries, null, 2));
      else console.log(formatHistory(entries, options.since));
    });
}

async function readHistory(config: Config, since: Date): Promise<HistoryEntry[]> {
  if (config.backend === 'local') {
    // Read-only, waiting while the receiver holds the file for a load; creates no file.
    const [{ readDuckDbFile, FileBusyError }, { readLedgerHistory }] = await Promise.all([
      import('../warehouses/duckdb'),
      import('../warehouses/duckdb/history'),
    ]);
    try {
      return await readDuckDbFile(
        localWarehouseFile(config),
        (c) => readLedgerHistory(c, since, MAX_ENTRIES),
        [],
        { lockWaitMs: DEFAULT_WAIT_SECONDS * 1000 },
      );
    } catch (error) {
      if (!(error instanceof FileBusyError)) throw error;
      throw new Error(
        `the local warehouse ${error.file} is locked by ${error.holder ?? 'another process'}, ` +
          `which did not let go for ${DEFAULT_WAIT_SECONDS} s; try again`,
        { cause: error },
      );
    }
  }
  const [{ BigQuery }, { createStore }, { readCloudHistory }] = await Promise.all([
    import('@google-cloud/bigquery'),
    import('../receiver/backend'),
    import('../warehouses/bigquery/history'),
  ]);
  return readCloudHistory({
    bigquery: new BigQuery({ projectId: config.project, location: config.location }),
    store: await createStore(config),
    location: config.location,
    quarantinePrefix: config.quarantinePrefix,
    buckets: config.buckets,
    since,
  });
}

const COLUMNS = ['time', 'object(s)', 'outcome', 'destination', 'rows', 'job id', 'reason'];

/** A table, one entry a line, the reason last and unpadded; a line saying so when there is none. */
export function formatHistory(entries: HistoryEntry[], sinceMs: number): string {
  if (entries.length === 0) return `nothing in the last ${describeMs(sinceMs)}`;
  const lines = entries.map((e) => [
    e.time.replace(/\.\d{3}Z$/, 'Z'),
    objectsText(e.objects),
    e.outcome,
    e.destination ?? '',
    rowsText(e),
    shortJobId(e.jobId ?? ''),
    e.reason ?? '',
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...lines.map((l) => l[i]!.length)));
  return [COLUMNS, ...lines]
    .map((cells) =>
      cells
        .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Every long hash or message id in a job id cut to its first 4 characters (`ingest_4ca1…`, a forced
 * load's `ingest_4ca1…_r410d…_03e6137d`): `--json` keeps it whole.
 */
function shortJobId(jobId: string): string {
  return jobId.replace(/([0-9a-f]{4})[0-9a-f-]{12,}/g, '$1…');
}

function objectsText(objects: string[]): string {
  if (objects.length === 0) return '-';
  return objects.length === 1 ? objects[0]! : `${objects[0]} +${objects.length - 1} more`;
}

function describeMs(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms / 1000}s`;
}

function durationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('a duration like 30m, 24h or 7d');
  return ms;
}

function outcomeArg(value: string): HistoryOutcome {
  if (!isHistoryOutcome(value))
    throw new InvalidArgumentError(
      `one of ${HISTORY_OUTCOMES.join(', ')} (skipped and duplicate objects leave no history)`,
    );
  return value;
}

function rowsText(e: HistoryEntry): string {
  if (e.rows === undefined) return '';
  return e.replacedRows ? `${e.rows} (replaced ${e.replacedRows})` : String(e.rows);
}
