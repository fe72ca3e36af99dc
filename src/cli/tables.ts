import { Command, InvalidArgumentError } from 'commander';
import { createBackend, localWarehouseFile } from '../receiver/backend';
import type { TableInfo } from '../warehouses/warehouse';
import { readConfig } from './context';

/** How long `tables` waits, by default, for the receiver to let go of the local warehouse file. */
export const DEFAULT_WAIT_SECONDS = 30;

export function tablesCommand(): Command {
  return new Command('tables')
    .description("list the warehouse's tables with their row counts (works while `dev` runs)")
    .option(
      '--wait <seconds>',
      'local backend: how long to wait while the receiver holds the warehouse file',
      parseSeconds,
      DEFAULT_WAIT_SECONDS,
    )
    .action(async (options: { wait: number }) => {
      const tables = await listTables(readConfig(), options.wait);
      if (tables.length === 0) console.log('no tables yet');
      const width = Math.max(5, ...tables.map((t) => t.table.length));
      if (tables.length > 0) console.log(`${'table'.padEnd(width)}  rows`);
      for (const t of tables) console.log(`${t.table.padEnd(width)}  ${t.rows}`);
    });
}

async function listTables(
  config: ReturnType<typeof readConfig>,
  waitSeconds: number,
): Promise<TableInfo[]> {
  if (config.backend === 'local') {
    // Read-only, waiting while the receiver holds the file for a load; creates no file.
    const { FileBusyError, readDuckDbTables } = await import('../warehouses/duckdb');
    try {
      return await readDuckDbTables(localWarehouseFile(config), { lockWaitMs: waitSeconds * 1000 });
    } catch (error) {
      if (!(error instanceof FileBusyError)) throw error;
      throw new Error(
        `the local warehouse ${error.file} is locked by ${error.holder ?? 'another process'}, ` +
          `which did not let go for ${waitSeconds} s; try again, or wait longer with --wait <seconds>`,
        { cause: error },
      );
    }
  }
  const backend = await createBackend(config);
  try {
    return await backend.warehouse.tables();
  } finally {
    await backend.close();
  }
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0) {
    throw new InvalidArgumentError('a number of seconds, 0 or more');
  }
  return seconds;
}
