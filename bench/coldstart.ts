import type { CloudEvent } from 'cloudevents';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent, type EventAnswer } from '../src/cli/events';
import { startBigQueryServer } from '../test/servers/bigquery-server';
import { startGcsServer } from '../test/servers/gcs-server';
import { REPO_ROOT } from '../test/helpers/server';
import {
  MB,
  NOOP_SOURCE,
  PEER_SOURCE,
  expectOutcome,
  expectStatus,
  firstAnswer,
  median,
  putLocal,
  result,
  round,
  rssOf,
  spawnFramework,
  type BenchOptions,
  type BenchReport,
  type BenchResult,
} from './lib';

const SMALL_CSV = 'state,code,population\nOhio,OH,11780017\nUtah,UT,3271616\n';
const PROBE = path.join(REPO_ROOT, 'dist', 'bench', 'module-probe.js');

interface Variant {
  name: string;
  target: string;
  source: string;
  /** Throws unless the first answer is the expected one. */
  check(answer: EventAnswer, what: string): void;
  /** The environment and the event for start `i` (each start loads an object of its own). */
  prepare(i: number): Promise<{ env: Record<string, string>; event: CloudEvent<object> }>;
}

/** The first answer must have this outcome. */
const outcome = (expected: string) => (answer: EventAnswer, what: string) =>
  expectOutcome(answer, expected, what);

interface Measured {
  ms: number;
  rss: number;
  /** Whether DuckDB and the Google clients were loaded (from the unmeasured probe start). */
  duckdb: boolean;
  google: boolean;
}

/**
 * 2. Cold start: from spawning the process to the first answered event, and resident memory after
 * it, for the no-op function, for `ingest` on each backend and for the peer (`bench/peer/`), whose
 * first event loads a small object through the same test servers as the gcp backend's. 10 rounds
 * (--quick: 3) in which each starts once, taking turns, after one unmeasured start each that records
 * which modules the process loaded.
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
      check: outcome('noop'),
      prepare: async () => ({
        env: {},
        event: finalizedEvent({ bucket: 'b', name: 'x.csv', generation: '1', size: 1 }),
      }),
    },
    {
      name: 'local',
      target: 'ingest',
      source: options.source,
      check: outcome('loaded'),
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
      check: outcome('loaded'),
      async prepare(i) {
        const resource = gcs.put('bench', `start-${i}/states.csv`, SMALL_CSV, {
          contentType: 'text/csv',
        });
        const object = { ...resource, size: Number(resource.size) };
        return { env: gcpEnv, event: finalizedEvent(object) };
      },
    },
    {
      // The same environment and a small object of its own; 204 once its load job is done.
      name: 'peer',
      target: 'peer',
      source: PEER_SOURCE,
      check: (answer, what) => expectStatus(answer, 204, what),
      async prepare(i) {
        const resource = gcs.put('bench', `peer-${i}/states.csv`, SMALL_CSV, {
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
  const peer = measured.get('peer') as Measured;
  const notes = [
    `coldstart: no-op ${round(noop.ms)} ms / ${round(noop.rss / MB)} MB; local ${round(local.ms)} ms / ${round(local.rss / MB)} MB; gcp ${round(gcp.ms)} ms / ${round(gcp.rss / MB)} MB; peer ${round(peer.ms)} ms / ${round(peer.rss / MB)} MB`,
    `coldstart: gcp loads DuckDB: ${gcp.duckdb ? 'yes' : 'no'}; local loads the Google clients: ${local.google ? 'yes' : 'no'}`,
  ];
  const isolated = !gcp.duckdb && !local.google;
  return { results: coldStartResults(runs, isolated), notes };
}

/**
 * The rows from each variant's measured starts (`runs`, by variant name: noop, local, gcp, peer).
 * The targets compare the gcp backend with the peer; `isolated` (the gcp backend does not load
 * DuckDB, the local one not the Google clients) is part of both. The ratios to the no-op are reported.
 */
export function coldStartResults(
  runs: Map<string, { ms: number; rss: number }[]>,
  isolated: boolean,
): BenchResult[] {
  const of = (name: string, pick: (m: { ms: number; rss: number }) => number) =>
    (runs.get(name) ?? []).map(pick);
  const ms = (m: { ms: number }) => m.ms;
  const mb = (m: { rss: number }) => m.rss / MB;
  const vsPeer = (row: BenchResult): BenchResult => ({ ...row, against: 'peer' });
  return [
    vsPeer(
      result('coldstart-gcp-vs-peer-time', 'ms', of('gcp', ms), of('peer', ms), '<= 1.0', isolated),
    ),
    vsPeer(
      result('coldstart-gcp-vs-peer-rss', 'MB', of('gcp', mb), of('peer', mb), '<= 1.0', isolated),
    ),
    result('coldstart-gcp-time', 'ms', of('gcp', ms), of('noop', ms), null),
    result('coldstart-gcp-rss', 'MB', of('gcp', mb), of('noop', mb), null),
    result('coldstart-local-time', 'ms', of('local', ms), of('noop', ms), null),
  ];
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
    variant.check(answer, `coldstart ${variant.name}`);
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
