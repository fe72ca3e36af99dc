import { Command } from 'commander';
import { createBackend } from '../backend';
import { readConfig } from './context';

export function tablesCommand(): Command {
  return new Command('tables')
    .description("list the warehouse's tables with their row counts (works while `dev` runs)")
    .action(async () => {
      const backend = await createBackend(readConfig());
      try {
        const tables = await backend.warehouse.tables();
        if (tables.length === 0) console.log('no tables yet');
        const width = Math.max(5, ...tables.map((t) => t.table.length));
        if (tables.length > 0) console.log(`${'table'.padEnd(width)}  rows`);
        for (const t of tables) console.log(`${t.table.padEnd(width)}  ${t.rows}`);
      } finally {
        await backend.close();
      }
    });
}
