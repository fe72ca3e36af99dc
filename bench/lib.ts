import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CloudEvent } from 'cloudevents';
import { sendEvent, type EventAnswer } from '../src/cli/events';
import { createLocalStore } from '../src/stores/local';
import type { StoredObject } from '../src/stores/store';
import { FRAMEWORK_MAIN, REPO_ROOT, freePort } from '../test/helpers/server';

/** What every benchmark gets from the runner. */
export interface BenchOptions {
  quick: boolean;
  /** A folder of its own, removed by the runner afterwards. */
  work: string;
  /** The checkout whose built `ingest` target is measured (`--source DIR`; default this one). */
  source: string;
  /** With `--cpu-prof`: where services write their V8 CPU profiles. */
  profileDir?: string;
  /** The image's environment for every service process (NODE_ENV). */
  imageEnv: Record<string, string>;
  /** A compile cache warmed as the image's is: each service process starts from a copy of it. */
  compileCache?: string;
  log(line: string): void;
}

/**
 * One row of `bench/results.json`. Each round measures value and baseline one after the other;
 * `value` and `baseline` are their medians, `ratio` the median of the rounds' value / baseline, and
 * `min` and `max` the lowest and highest of those.
 */
export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline: number;
  ratio: number;
  min: number;
  max: number;
  rounds: number;
  /** `>= 0.8`, `<= 1.5`, …; null when the ratio is only reported. */
  target: string | null;
  met: boolean | null;
  /** `peer` when the baseline is the peer (`bench/peer/`) rather than the benchmark's usual one. */
  against?: 'peer';
}

/** Also printed under the table; not part of results.json. */
export interface BenchReport {
  results: BenchResult[];
  notes: string[];
}

/** The environment every process of the benchmark runs with: loopback only, no metadata server. */
export const BASE_ENV = {
  PATH: process.env.PATH ?? '',
  METADATA_SERVER_DETECTION: 'none',
  GOOGLE_CLOUD_PROJECT: 'bench-project',
  LOG_LEVEL: 'warn',
};

export const NOOP_SOURCE = path.join(REPO_ROOT, 'dist', 'bench', 'noop');

/** The peer: the loader a user writes without this project (`bench/peer/`), target `peer`. */
export const PEER_SOURCE = path.join(REPO_ROOT, 'dist', 'bench', 'peer');

/** A row from the rounds' values and baselines (`values[i]` against `baselines[i]`). */
export function result(
  name: string,
  unit: string,
  values: number[],
  baselines: number[],
  target: string | null,
  /** A further condition of the target, beyond the ratio. */
  also = true,
): BenchResult {
  const ratios = values.map((value, i) => value / (baselines[i] ?? NaN));
  const ratio = median(ratios);
  const [op, bound] = target?.split(' ') ?? [];
  const limit = Number(bound);
  const met = target === null ? null : (op === '>=' ? ratio >= limit : ratio <= limit) && also;
  return {
    name,
    unit,
    value: round(median(values)),
    baseline: round(median(baselines)),
    ratio: round(ratio),
    min: round(Math.min(...ratios)),
    max: round(Math.max(...ratios)),
    rounds: ratios.length,
    target,
    met,
  };
}

/** Four significant digits, but whole numbers from 1,000 up (bytes stay exact). */
export function round(n: number): number {
  return Math.abs(n) >= 1000 ? Math.round(n) : Number(n.toPrecision(4));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** CPU seconds (user and system) a process has used, from /proc/<pid>/stat. */
export function cpuOf(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ)
}

export const MB = 1024 * 1024;

export interface Service {
  url: string;
  pid: number;
  started: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Where a benchmark that loads a service from this process puts each on a CPU of its own, so that the
 * two never take turns on one core: this process's main thread (the load generator) goes to CPU 0,
 * and `service` is for the services; undefined on one CPU or without `taskset`. Hand the result to
 * releaseCpus() when done: processes started later inherit this thread's CPUs.
 */
export function separateCpus(): { service: string; all: string } | undefined {
  const count = os.availableParallelism(); // before pinning: it counts the CPUs this thread may use
  if (count < 2) return undefined;
  const probe = spawnSync('taskset', ['-cp', '0', String(process.pid)], { stdio: 'ignore' });
  return probe.status === 0 ? { service: `1-${count - 1}`, all: `0-${count - 1}` } : undefined;
}

/** Lets every thread of this process run on every CPU again. */
export function releaseCpus(cpus: { all: string }): void {
  spawnSync('taskset', ['-a', '-cp', cpus.all, String(process.pid)], { stdio: 'ignore' });
}

/**
 * Starts the Functions Framework with `target` from `source` as its own process, as Cloud Run does
 * (and as test/helpers/server.ts does for `ingest`). `started` is the spawn time in ms
 * (performance.now()); the caller decides when it is ready. With `cpus`, it runs only on those.
 */
export async function spawnFramework(
  options: BenchOptions,
  target: string,
  source: string,
  env: Record<string, string>,
  cpus?: string,
): Promise<Service> {
  const port = await freePort();
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  // As on Cloud Run, every instance starts from the cache the image was built with.
  const cache = options.compileCache && fs.mkdtempSync(path.join(options.work, 'compile-cache-'));
  if (cache) fs.cpSync(options.compileCache as string, cache, { recursive: true });
  const started = performance.now();
  const command = [
    process.execPath,
    ...profile,
    FRAMEWORK_MAIN,
    `--target=${target}`,
    '--signature-type=http',
    `--source=${source}`,
  ];
  const [program, ...args] = cpus ? ['taskset', '-c', cpus, ...command] : command;
  const child: ChildProcess = spawn(program as string, args, {
    cwd: REPO_ROOT,
    env: {
      ...BASE_ENV,
      ...options.imageEnv,
      ...env,
      ...(cache ? { NODE_COMPILE_CACHE: cache } : {}),
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).then(() => {
    if (cache) fs.rmSync(cache, { recursive: true, force: true });
  });
  if (child.pid === undefined) throw new Error(`could not start ${target}`);
  return {
    url: `http://127.0.0.1:${port}/`,
    pid: child.pid,
    started,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The `ingest` target of the checkout under test, as its own process, once it answers /health. */
export async function startIngest(
  options: BenchOptions,
  env: Record<string, string>,
  cpus?: string,
): Promise<Service> {
  return healthy(await spawnFramework(options, 'ingest', options.source, env, cpus));
}

/** The no-op baseline function, once it answers. */
export async function startNoop(options: BenchOptions, cpus?: string): Promise<Service> {
  return healthy(await spawnFramework(options, 'noop', NOOP_SOURCE, {}, cpus));
}

async function healthy(service: Service): Promise<Service> {
  try {
    await waitHealthy(service);
    return service;
  } catch (error) {
    await service.stop();
    throw error;
  }
}

/** Sends `event` until the service answers (it refuses connections until it listens). */
export async function firstAnswer(
  service: Service,
  event: CloudEvent<object>,
  timeoutMs = 30_000,
): Promise<EventAnswer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await sendEvent(service.url, event);
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`no answer from ${service.url}: ${String(error)}\n${service.output()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

export async function waitHealthy(service: Service): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${service.url}health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${service.url} did not become healthy:\n${service.output()}`);
}

/** The outcome of a one-object answer, or a description of what came instead. */
export function outcomeOf(answer: EventAnswer): string {
  const body = answer.body as { outcome?: unknown; error?: unknown } | null;
  if (answer.status === 200 && typeof body?.outcome === 'string') return body.outcome;
  return `HTTP ${answer.status} ${JSON.stringify(answer.body)}`;
}

/** Throws unless the answer has `outcome`. */
export function expectOutcome(answer: EventAnswer, outcome: string, what: string): void {
  const got = outcomeOf(answer);
  if (got !== outcome) throw new Error(`${what}: expected ${outcome}, got ${got}`);
}

/** Writes `content` as a local object and returns it as the store sees it (generation = mtime). */
export async function putLocal(
  root: string,
  bucket: string,
  name: string,
  content: string | Buffer,
): Promise<StoredObject> {
  const file = path.join(root, 'buckets', bucket, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return statLocal(root, bucket, name);
}

export async function statLocal(root: string, bucket: string, name: string): Promise<StoredObject> {
  const object = await createLocalStore(root).stat(bucket, name);
  if (!object) throw new Error(`local object ${bucket}/${name} not found under ${root}`);
  return object;
}

/** Throws unless the answer has HTTP status `status` (the peer answers 204, or 500 on failure). */
export function expectStatus(answer: EventAnswer, status: number, what: string): void {
  if (answer.status !== status) {
    throw new Error(
      `${what}: expected HTTP ${status}, got HTTP ${answer.status} ${JSON.stringify(answer.body)}`,
    );
  }
}

/**
 * Compiles the peer's module into a compile cache, as the image's build does the service's (the
 * Functions Framework and both clients are there already), so that both start under the same
 * conditions. Loading it registers the function and creates the two clients; nothing is sent.
 */
export function warmPeerCache(dir: string, env: Record<string, string>): void {
  execFileSync(process.execPath, ['-e', `require(${JSON.stringify(PEER_SOURCE)})`], {
    cwd: REPO_ROOT,
    env: { ...BASE_ENV, ...env, NODE_COMPILE_CACHE: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Runs `work` over `items` with at most `limit` at a time. */
export { mapLimit } from '../src/core/map-limit';

export function seconds(fromMs: number): number {
  return (performance.now() - fromMs) / 1000;
}
