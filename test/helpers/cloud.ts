import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  startBigQueryServer,
  type BigQueryServer,
  type BigQueryServerOptions,
} from '../servers/bigquery-server';
import { startGcsServer, type GcsServer } from '../servers/gcs-server';
import { startReceiver, type RunningServer } from './server';

export interface CloudReceiver {
  gcs: GcsServer;
  bq: BigQueryServer;
  receiver: RunningServer;
  /** Starts another receiver on the same servers, ingest.yaml and environment (plus `env`). */
  startAnother(env?: Record<string, string>): Promise<RunningServer>;
  stop(): Promise<void>;
}

/**
 * The receiver with INGEST_BACKEND=gcp, driving the real client libraries against the Cloud Storage
 * and BigQuery test servers; `config` is the ingest.yaml text ('' for the built-in defaults).
 */
export async function startCloudReceiver(
  config: string,
  options: {
    env?: Record<string, string>;
    jobDurationMs?: number;
    bigquery?: Omit<BigQueryServerOptions, 'gcs'>;
  } = {},
): Promise<CloudReceiver> {
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({
    gcs,
    jobDurationMs: options.jobDurationMs,
    ...options.bigquery,
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-cloud-'));
  const configFile = path.join(dir, 'ingest.yaml');
  if (config !== '') fs.writeFileSync(configFile, config);
  const env = {
    INGEST_BACKEND: 'gcp',
    INGEST_CONFIG: config === '' ? '' : configFile,
    STORAGE_EMULATOR_HOST: gcs.url,
    BIGQUERY_EMULATOR_HOST: bq.url,
    // No Application Default Credentials may be found: the clients then send no token.
    CLOUDSDK_CONFIG: dir,
    HOME: dir,
    ...options.env,
  };
  const receiver = await startReceiver(env);
  const others: RunningServer[] = [];
  return {
    gcs,
    bq,
    receiver,
    async startAnother(extra = {}) {
      const another = await startReceiver({ ...env, ...extra });
      others.push(another);
      return another;
    },
    async stop() {
      await Promise.all([receiver, ...others].map((r) => r.stop()));
      await bq.close();
      await gcs.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
