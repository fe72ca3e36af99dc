import * as fs from 'node:fs';
import * as path from 'node:path';
import { STORAGE_TYPE, binaryEvent } from '../test/helpers/events';
import { countLoads, steadyDeliveries } from '../test/helpers/steady';
import { startBigQueryServer, type BigQueryServer } from '../test/servers/bigquery-server';
import { startGcsServer, type GcsServer, type ObjectResource } from '../test/servers/gcs-server';
import { result, round, startIngest, type BenchOptions, type BenchReport } from './lib';

const PROJECT = 'bench-project';
const PARTITION_JOB_MS = 1000;
const DAY_MS = 86_400_000;

/**
 * 7. A compressed day against BigQuery's load-job quota: objects for one table at a steady rate, 10%
 * delivered twice, through the cloud path. The test server's per-table quota (failed jobs counted)
 * is scaled so that one job per object would exceed it tenfold; the service's `batch.jobsPerDay` is
 * two thirds of it, as 1,000 is of BigQuery's 1,500.
 */
export async function quotaDay(options: BenchOptions): Promise<BenchReport> {
  const day = await partitionDay(options);
  const report = await jobQuotaDay(options);
  return { results: [...report.results, ...day.results], notes: [...report.notes, ...day.notes] };
}

async function jobQuotaDay(options: BenchOptions): Promise<BenchReport> {
  const count = options.quick ? 2000 : 20_000;
  const dayMs = options.quick ? 15_000 : 200_000;
  const quota = count / 10;
  const jobsPerDay = (quota * 2) / 3;
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, loadJobsPerTable: { limit: quota, dayMs } });
  const scaled = jobsPerDay * (DAY_MS / dayMs);
  const service = await startCloudService(
    options,
    { gcs, bq },
    'quota',
    `routes:\n  - match: "logs/*.csv"\n    table: events\n    batch: {jobsPerDay: ${scaled}, burst: 10}\n`,
  );
  try {
    const run = await steadyDeliveries({
      count,
      perSecond: count / (dayMs / 1000),
      duplicates: 0.1,
      concurrent: 0.01,
      url: service.url,
      create: (i) => gcs.put('bench', `logs/part-${i}.csv`, `id,value\n${i},x\n`),
      event: (resource: ObjectResource, delivery) =>
        binaryEvent(STORAGE_TYPE, resource, {
          'ce-id': `quota-${resource.name}-${delivery}`,
          'ce-source': '//storage.googleapis.com/projects/_/buckets/bench',
        }),
    });
    const jobs = bq.inserts().map((body) => {
      const id = body.jobReference?.jobId ?? '';
      const status = bq.job(PROJECT, id)?.status as { errorResult?: unknown } | undefined;
      return {
        sources: (body.configuration?.load?.sourceUris as string[]) ?? [],
        ok: !status?.errorResult,
      };
    });
    const succeeded = jobs.filter((j) => j.ok);
    const loads = countLoads(succeeded);
    const rows = bq.rows(PROJECT, 'ingest', 'events');
    const exactlyOnce =
      loads.size === count && [...loads.values()].every((n) => n === 1) && rows === count ? 1 : 0;
    const inserted = bq.jobsFor(PROJECT, 'ingest', 'events');
    // The budget counts per rolling day; the run lasts about one day, plus the tail of held requests.
    const days = Math.max(1, run.elapsedMs / dayMs);
    const latencies = [...run.latencies].sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? NaN;
    const interval = dayMs / 1000 / jobsPerDay;
    options.log(
      `  ${count} objects in ${round(run.elapsedMs / 1000)} s: ${inserted} jobs (${jobs.length - succeeded.length} failed), ` +
        `quota ${quota} a day; ${round(count / Math.max(1, succeeded.length))} files a job; ` +
        `p99 ${round(p99)} s; ${run.redelivered} answers 503`,
    );
    return {
      results: [
        result(
          'quota-day-files-per-job',
          'files/job',
          [count / Math.max(1, succeeded.length)],
          [1],
          null,
        ),
        result('quota-day-jobs-vs-quota', 'jobs', [inserted], [quota * days], '<= 1'),
        result('quota-day-exactly-once', 'bool', [exactlyOnce], [1], '>= 1'),
        result('quota-day-latency-p99', 's', [p99], [interval], null),
      ],
      notes: [
        `quota-day: ${count} objects over a ${dayMs / 1000} s day, quota ${quota} jobs a day, ` +
          `batch.jobsPerDay ${round(jobsPerDay)} (one job every ${round(interval)} s); latency-p99's baseline is that interval`,
      ],
    };
  } finally {
    await service.stop();
    await bq.close();
    await gcs.close();
  }
}

const PARTITION_FILES = 200;

/**
 * A partition day of 200 files on the cloud path, arriving 20 a second with 10% delivered twice: a
 * rebuild loads the whole day, so one rebuild per event would cost 200 jobs reading 20,100 files in
 * all. Rebuilds of one partition are coalesced in the instance; reported are the load jobs per file
 * and the files the jobs read per file of the day (1 would be each file read once).
 */
async function partitionDay(options: BenchOptions): Promise<BenchReport> {
  const gcs = await startGcsServer();
  // A BigQuery load job takes seconds, not the test server's default of none: with jobs that end at
  // once, no event can arrive while a rebuild runs, and nothing can be coalesced.
  const bq = await startBigQueryServer({ gcs, jobDurationMs: PARTITION_JOB_MS });
  const service = await startCloudService(
    options,
    { gcs, bq },
    'partition',
    `routes:\n  - match: "sales/{yyyy}/{mm}/{dd}/*.csv"\n    table: sales\n    write: partition\n`,
  );
  try {
    const run = await steadyDeliveries({
      count: PARTITION_FILES,
      perSecond: 20,
      duplicates: 0.1,
      concurrent: 0.01,
      url: service.url,
      create: (i) => gcs.put('bench', `sales/2026/11/28/part-${i}.csv`, `id,value\n${i},x\n`),
      event: (resource: ObjectResource, delivery) =>
        binaryEvent(STORAGE_TYPE, resource, {
          'ce-id': `day-${resource.name}-${delivery}`,
          'ce-source': '//storage.googleapis.com/projects/_/buckets/bench',
        }),
    });
    const jobs = bq.inserts().filter((body) => body.configuration?.load);
    const read = jobs.reduce(
      (n, b) => n + ((b.configuration?.load?.sourceUris as []) ?? []).length,
      0,
    );
    const rows = bq.table(PROJECT, 'ingest', 'sales')?.partitions.get('20261128');
    const whole = rows === PARTITION_FILES ? 1 : 0;
    options.log(
      `  partition day: ${PARTITION_FILES} files in ${round(run.elapsedMs / 1000)} s: ${jobs.length} load jobs, ` +
        `${read} files read; the day holds ${rows ?? 0} rows; ${run.redelivered} answers 503`,
    );
    return {
      results: [
        result(
          'partition-day-jobs-per-file',
          'jobs/file',
          [jobs.length / PARTITION_FILES],
          [1],
          null,
        ),
        result(
          'partition-day-files-read-per-file',
          'files/file',
          [read / PARTITION_FILES],
          [(PARTITION_FILES + 1) / 2],
          null,
        ),
        result('partition-day-whole', 'bool', [whole], [1], '>= 1'),
      ],
      notes: [
        `partition-day: ${PARTITION_FILES} files of one day at 20 a second, 10% delivered twice, ${PARTITION_JOB_MS} ms load jobs; the baselines are one rebuild per event (1 job a file, reading (n+1)/2 files a file)`,
      ],
    };
  } finally {
    await service.stop();
    await bq.close();
    await gcs.close();
  }
}

/** The service on the cloud path against the test servers, with `yaml` as its ingest.yaml. */
async function startCloudService(
  options: BenchOptions,
  { gcs, bq }: { gcs: GcsServer; bq: BigQueryServer },
  name: string,
  yaml: string,
) {
  const home = path.join(options.work, `${name}-home`); // no Application Default Credentials in here
  fs.mkdirSync(home);
  const config = path.join(options.work, `${name}.yaml`);
  fs.writeFileSync(config, yaml);
  return startIngest(options, {
    INGEST_BACKEND: 'gcp',
    INGEST_CONFIG: config,
    STORAGE_EMULATOR_HOST: gcs.url,
    BIGQUERY_EMULATOR_HOST: bq.url,
    HOME: home,
    CLOUDSDK_CONFIG: home,
  });
}
