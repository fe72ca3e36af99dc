import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startBigQueryServer, type BigQueryServer } from '../servers/bigquery-server';
import { startGcsServer, type GcsServer } from '../servers/gcs-server';
import { startReceiver, type RunningServer } from './server';

export interface CloudReceiver {
  gcs: GcsServer;
  bq: BigQueryServer;
  receiver: RunningServer;
  stop(): Promise<void>;
}

/**
 * The receiver with INGEST_BACKEND=gcp, driving the real client libraries against the Cloud Storage
 * and BigQuery test servers; `config` is the ingest.yaml text ('' for the built-in defaults).
 */
export async function startCloudReceiver(
  config: string,
  options: { env?: Record<string, string>; jobDurationMs?: number } = {},
): Promise<CloudReceiver> {
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: options.jobDurationMs });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-cloud-'));
  const configFile = path.join(dir, 'ingest.yaml');
  if (config !== '') fs.writeFileSync(configFile, config);
  const receiver = await startReceiver({
    INGEST_BACKEND: 'gcp',
    INGEST_CONFIG: config === '' ? '' : configFile,
    STORAGE_EMULATOR_HOST: gcs.url,
    BIGQUERY_EMULATOR_HOST: bq.url,
    // No Application Default Credentials may be found: the clients then send no token.
    CLOUDSDK_CONFIG: dir,
    HOME: dir,
    ...options.env,
  });
  return {
    gcs,
    bq,
    receiver,
    async stop() {
      await receiver.stop();
      await bq.close();
      await gcs.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
