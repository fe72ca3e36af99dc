import { DuckDBInstance } from '@duckdb/node-api';

/** Runs a read-only query against a warehouse file, waiting while the receiver holds it. */
export async function queryDuckDb(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    let instance: DuckDBInstance | undefined;
    try {
      instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
      const connection = await instance.connect();
      const rows = (await connection.runAndReadAll(sql)).getRowObjectsJson() as Record<
        string,
        unknown
      >[];
      connection.closeSync();
      return rows;
    } catch (error) {
      if (Date.now() > deadline || !/lock/i.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      instance?.closeSync();
    }
  }
}
