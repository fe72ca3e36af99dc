import { Command } from 'commander';
import { createBackend, localWarehouseFile } from '../backend';
import type { TableInfo } from '../warehouses/warehouse';
import { readConfig } from './context';

export function tablesCommand(): Command {
  return new Command('tables')
    .description("list the warehouse's tables with their row counts (works while `dev` runs)")
    .action(async () => {
      const tables = await listTables(readConfig());
      if (tables.length === 0) console.log('no tables yet');
      const width = Math.max(5, ...tables.map((t) => t.table.length));
      if (tables.length > 0) console.log(`${'table'.padEnd(width)}  rows`);
      for (const t of tables) console.log(`${t.table.padEnd(width)}  ${t.rows}`);
    });
}

async function listTables(config: ReturnType<typeof readConfig>): Promise<TableInfo[]> {
  if (config.backend === 'local') {
    // Read-only, waiting while the receiver holds the file for a load; creates no file.
    const { readDuckDbTables } = await import('../warehouses/duckdb');
    return readDuckDbTables(localWarehouseFile(config));
  }
  const backend = await createBackend(config);
  try {
    return await backend.warehouse.tables();
  } finally {
    await backend.close();
  }
}
