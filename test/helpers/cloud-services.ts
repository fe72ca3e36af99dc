import { createBatches } from '../../src/batching';
import { loadConfig } from '../../src/config';
import { ingest } from '../../src/ingest';
import type { ObjectResult } from '../../src/objects/outcomes';
import type { Services } from '../../src/ingest/services';
import { createGcsStore } from '../../src/stores/gcs';
import { createGcsClaims } from '../../src/stores/gcs-claims';
import type { StoredObject } from '../../src/stores/store';
import { createBigQueryWarehouse } from '../../src/warehouses/bigquery';
import { MemoryPublisher } from '../fakes/memory';
import {
  bigQueryClient,
  startBigQueryServer,
  type BigQueryServer,
} from '../servers/bigquery-server';
import { startGcsServer, storageClient, type GcsServer } from '../servers/gcs-server';

export const PROJECT = 'test-project';
export const BUCKET = 'landing';
const YAML = `
project: ${PROJECT}
buckets: [${BUCKET}]
routes:
  - match: "in/*.csv"
    dataset: ingest
    table: events
  - match: "lone/*.csv"
    dataset: ingest
    table: lone
    batch: false
  - match: "days/{yyyy}/{mm}/{dd}/*.csv"
    dataset: ingest
    table: days
    write: partition
`;

export interface CloudServices {
  gcs: GcsServer;
  bq: BigQueryServer;
  services: Services;
  /** One finalized event for the object as Cloud Storage holds it now. */
  event(name: string, budgetMs?: number): Promise<ObjectResult>;
  close(): Promise<void>;
}

/**
 * The use case in this process on the Google client libraries, driven against the Cloud Storage and
 * BigQuery test servers: what a Cloud Run instance runs.
 */
export async function startCloudServices(
  options: { claimGraceMs?: number; jobDurationMs?: number } = {},
): Promise<CloudServices> {
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: options.jobDurationMs ?? 0 });
  gcs.createBucket(BUCKET);
  const storage = storageClient(gcs);
  const config = loadConfig({}, (file) => {
    if (file === 'ingest.yaml') return YAML;
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  });
  const warehouse = createBigQueryWarehouse({
    bigquery: bigQueryClient(bq),
    storage,
    pollIntervalMs: 20,
  });
  const parts = {
    config,
    store: createGcsStore({ storage }),
    warehouse,
    publisher: new MemoryPublisher(),
    claims: createGcsClaims(storage, options.claimGraceMs),
  };
  const services = { ...parts, batches: createBatches(parts, { warn: () => undefined }) };
  return {
    gcs,
    bq,
    services,
    async event(name, budgetMs = 30_000) {
      const object = (await parts.store.stat(BUCKET, name)) as StoredObject;
      const answer = await ingest(
        { objects: [object], ignored: [], force: false },
        services,
        Date.now() + budgetMs,
      );
      return answer.objects[0] as ObjectResult;
    },
    async close() {
      services.batches.abort('closing');
      await warehouse.close();
      await bq.close();
      await gcs.close();
    },
  };
}
