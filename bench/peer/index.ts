import { BigQuery } from '@google-cloud/bigquery';
import * as functions from '@google-cloud/functions-framework';
import { Storage } from '@google-cloud/storage';

// The peer: the loader a user writes without this project, as Google's Cloud Storage to BigQuery
// tutorials do. One load job per finalized event, awaited; the Functions Framework answers 204 when it
// succeeds and 500 when it throws. No duplicate check, no head check, no claims. Run with
// `--source=dist/bench/peer --target=peer`; its table is the file's name, as the service's default.
const bigquery = new BigQuery();
const storage = new Storage();

type StorageObject = { bucket: string; name: string };

functions.cloudEvent('peer', async (event: functions.CloudEvent<StorageObject>) => {
  const { bucket, name } = event.data as StorageObject;
  const table = name
    .replace(/^.*\//, '')
    .replace(/\.csv$/i, '')
    .toLowerCase()
    .replace(/\W/g, '_');
  await bigquery
    .dataset('ingest')
    .table(table)
    .load(storage.bucket(bucket).file(name), { autodetect: true, skipLeadingRows: 1 });
});
