import type { CloudEvent } from 'cloudevents';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent } from '../src/cli/events';
import { startBigQueryServer } from '../test/servers/bigquery-server';
import { startGcsServer } from '../test/servers/gcs-server';
import { REPO_ROOT } from '../test/helpers/server';
import {
  MB,
  NOOP_SOURCE,
  expectOutcome,
  firstAnswer,
  median,
  putLocal,
  result,
  round,
  rssOf,
  spawnFramework,
  type BenchOptions,
  type BenchReport,
} from './lib';

const SMALL_CSV = 'state,code,population\nOhio,OH,11780017\nUtah,UT,3271616\n';
const PROBE = path.join(REPO_ROOT, 'dist', 'bench', 'module-probe.js');

interface Variant {
  name: string;
  target: string;
  source: string;
  outcome: string;
  /** The environment and the event for start `i` (each start loads an object of its own). */
  prepare(i: number): Promise<{ env: Record<string, string>; event: CloudEvent<object> }>;
}

interface Measured {
  ms: number;
  rss: number;
  /** Whether DuckDB and the Google clients were loaded (from the unmeasured probe start). */
  duckdb: boolean;
  google: boolean;
}

/**
 * 2. Cold start: from spawning the process to the first answered event, and resident memory after
 * it, for the no-op function and for `ingest` on each backend. 10 rounds (--quick: 3) in which
 * each starts once, taking turns, after one unmeasured start each that records which modules the
 * process loaded.
 */
export async function coldStart(options: BenchOptions): Promise<BenchReport> {
  const starts = options.quick ? 3 : 10;
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs });
  const home = path.join(options.work, 'home'); // no Application Default Credentials in here
  fs.mkdirSync(home);
  const gcpEnv = {
    INGEST_BACKEND: 'gcp',
    STORAGE_EMULATOR_HOST: gcs.url,
    BIGQUERY_EMULATOR_HOST: bq.url,
    HOME: home,
    CLOUDSDK_CONFIG: home,
  };
  const variants: Variant[] = [
    {
      name: 'noop',
      target: 'noop',
      source: NOOP_SOURCE,
      outcome: 'noop',
      prepare: async () => ({
        env: {},
        event: finalizedEvent({ bucket: 'b', name: 'x.csv', generation: '1', size: 1 }),
      }),
    },
    {
      name: 'local',
      target: 'ingest',
      source: options.source,
      outcome: 'loaded',
      async prepare(i) {
        const root = path.join(options.work, `local-${i}`); // a fresh warehouse each time
        const object = await putLocal(root, 'bench', 'states.csv', SMALL_CSV);
        return { env: { LOCAL_DATA_DIR: root }, event: finalizedEvent(object) };
      },
    },
    {
      name: 'gcp',
      target: 'ingest',
      source: options.source,
      outcome: 'loaded',
      async prepare(i) {
        const resource = gcs.put('bench', `start-${i}/states.csv`, SMALL_CSV, {
          contentType: 'text/csv',
        });
        const object = { ...resource, size: Number(resource.size) };
        return { env: gcpEnv, event: finalizedEvent(object) };
      },
    },
  ];
  const measured = new Map<string, Measured>();
  const runs = new Map<string, Measured[]>(variants.map((v) => [v.name, []]));
  try {
    const probes = new Map<string, Measured>();
    for (const variant of variants)
      probes.set(variant.name, await startOnce(variant, 0, options, true));
    // The variants take turns, so that other load on the machine falls on all of them alike.
    for (let i = 1; i <= starts; i++) {
      for (const variant of variants)
        runs.get(variant.name)?.push(await startOnce(variant, i, options, false));
    }
    for (const variant of variants) {
      const times = (runs.get(variant.name) ?? []).map((run) => run.ms);
      const rss = (runs.get(variant.name) ?? []).map((run) => run.rss);
      const m = { ...(probes.get(variant.name) as Measured), ms: median(times), rss: median(rss) };
      measured.set(variant.name, m);
      options.log(
        `  ${variant.name}: median ${round(m.ms)} ms, ${round(m.rss / MB)} MB RSS ` +
          `(times ${times.map((t) => Math.round(t)).join(', ')}); ` +
          `loads DuckDB: ${m.duckdb}, Google clients: ${m.google}`,
      );
    }
  } finally {
    await bq.close();
    await gcs.close();
  }
  const noop = measured.get('noop') as Measured;
  const local = measured.get('local') as Measured;
  const gcp = measured.get('gcp') as Measured;
  const notes = [
    `coldstart: no-op ${round(noop.ms)} ms / ${round(noop.rss / MB)} MB; local ${round(local.ms)} ms / ${round(local.rss / MB)} MB; gcp ${round(gcp.ms)} ms / ${round(gcp.rss / MB)} MB`,
    `coldstart: gcp loads DuckDB: ${gcp.duckdb ? 'yes' : 'no'}; local loads the Google clients: ${local.google ? 'yes' : 'no'}`,
  ];
  const isolated = !gcp.duckdb && !local.google;
  const of = (name: string, pick: (m: Measured) => number) => (runs.get(name) ?? []).map(pick);
  const ms = (m: Measured) => m.ms;
  const mb = (m: Measured) => m.rss / MB;
  return {
    results: [
      result('coldstart-gcp-time', 'ms', of('gcp', ms), of('noop', ms), '<= 1.5', isolated),
      result('coldstart-gcp-rss', 'MB', of('gcp', mb), of('noop', mb), '<= 1.5', isolated),
      result('coldstart-local-time', 'ms', of('local', ms), of('noop', ms), null),
    ],
    notes,
  };
}

async function startOnce(
  variant: Variant,
  i: number,
  options: BenchOptions,
  probe: boolean,
): Promise<Measured> {
  const { env, event } = await variant.prepare(i);
  const modules = path.join(options.work, `${variant.name}-modules.json`);
  const probeEnv: Record<string, string> = probe
    ? { NODE_OPTIONS: `--require=${PROBE}`, BENCH_MODULES_FILE: modules }
    : {};
  const service = await spawnFramework(options, variant.target, variant.source, {
    ...env,
    ...probeEnv,
  });
  try {
    const answer = await firstAnswer(service, event);
    const ms = performance.now() - service.started;
    expectOutcome(answer, variant.outcome, `coldstart ${variant.name}`);
    const rss = rssOf(service.pid);
    await service.stop();
    if (!probe) return { ms, rss, duckdb: false, google: false };
    const loaded = JSON.parse(fs.readFileSync(modules, 'utf8')) as string[];
    return {
      ms,
      rss,
      duckdb: loaded.some((m) => m.includes(`${path.sep}@duckdb${path.sep}`)),
      google: loaded.some((m) => /[/\\]@google-cloud[/\\](storage|bigquery|pubsub)[/\\]/.test(m)),
    };
  } finally {
    await service.stop();
  }
}
