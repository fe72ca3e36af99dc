import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cloudPath } from './cloud';
import { coldStart } from './coldstart';
import { nodeOfMajor, parseImage, warmCompileCache } from './image';
import { MB, warmPeerCache, type BenchOptions, type BenchReport, type BenchResult } from './lib';
import { lineageLocal } from './lineage-local';
import { localIngest } from './local-ingest';
import { table, updatePerformanceDoc, type Machine } from './readme';
import { quotaDay } from './quota-day';
import { REPO_ROOT } from '../test/helpers/server';
import { receiverOverhead } from './receiver';
import { smallFiles } from './small-files';

// `npm run bench [-- --quick] [-- --only receiver,cloud]`: every benchmark against its baseline,
// measured in this run, on the Node major and with the compile cache of the Dockerfile's runtime
// stage; prints the ratios and writes bench/results.json.

const BENCHMARKS: Record<string, (options: BenchOptions) => Promise<BenchReport>> = {
  receiver: receiverOverhead,
  coldstart: coldStart,
  'local-ingest': localIngest,
  'small-files': smallFiles,
  'lineage-local': lineageLocal,
  cloud: cloudPath,
  'quota-day': quotaDay,
};

const BENCH_DIR = path.resolve(__dirname, '..', '..', 'bench');

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const sourceAt = argv.indexOf('--source');
  const source = sourceAt >= 0 ? path.resolve(argv[sourceAt + 1] ?? '.') : REPO_ROOT;
  const profileDir = argv.includes('--cpu-prof')
    ? path.join(BENCH_DIR, '.work', 'profiles')
    : undefined;
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : Object.keys(BENCHMARKS);
  const unknown = only.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}\n`,
    );
    return 2;
  }
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const dockerfile = [source, REPO_ROOT]
    .map((dir) => path.join(dir, 'Dockerfile'))
    .find(fs.existsSync);
  const image = parseImage(fs.readFileSync(dockerfile ?? '', 'utf8'));
  if (Number(process.versions.node.split('.')[0]) !== image.nodeMajor) {
    // The whole run moves to the image's Node: the services, and the baselines run in this process.
    const node = nodeOfMajor(image.nodeMajor);
    if (node) return rerun(node, argv);
    log(
      `bench: Node ${image.nodeMajor}, the runtime of ${image.image}, is not available ` +
        `(npm exec --package=node@${image.nodeMajor} failed); measuring on Node ${process.version} instead`,
    );
  }
  // Every process, this one included: no metadata server, a fixed project, loopback only.
  process.env.METADATA_SERVER_DETECTION = 'none';
  process.env.GOOGLE_CLOUD_PROJECT = 'bench-project';

  fs.mkdirSync(path.join(BENCH_DIR, '.work'), { recursive: true });
  const work = fs.mkdtempSync(path.join(BENCH_DIR, '.work', 'run-'));
  // The image's environment but what each benchmark sets itself: the backend, the port, the cache.
  const imageEnv = Object.fromEntries(
    Object.entries(image.env).filter(
      ([key]) => !['INGEST_BACKEND', 'PORT', 'NODE_COMPILE_CACHE'].includes(key),
    ),
  );
  const compileCache = image.env.NODE_COMPILE_CACHE ? path.join(work, 'compile-cache') : undefined;
  if (compileCache) {
    warmCompileCache(image, source, compileCache);
    warmPeerCache(compileCache, imageEnv);
  }
  const cacheSetting = compileCache
    ? "NODE_COMPILE_CACHE, warmed by the Dockerfile's build commands (and the peer's module); each service process starts from a copy"
    : 'none (the image sets no NODE_COMPILE_CACHE)';
  const started = performance.now();
  const results: BenchResult[] = [];
  const notes: string[] = [];
  try {
    for (const name of only) {
      const t0 = performance.now();
      log(`${name}${quick ? ' (quick)' : ''} …`);
      const dir = path.join(work, name);
      fs.mkdirSync(dir);
      const report = await (BENCHMARKS[name] as (options: BenchOptions) => Promise<BenchReport>)({
        quick,
        work: dir,
        source,
        profileDir,
        imageEnv,
        compileCache,
        log,
      });
      results.push(...report.results);
      notes.push(...report.notes);
      fs.rmSync(dir, { recursive: true, force: true });
      log(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    // bench/.work itself goes too, unless it keeps something (CPU profiles).
    try {
      fs.rmdirSync(path.dirname(work));
    } catch {
      // not empty: kept
    }
  }

  const machine: Machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim() ?? 'unknown',
    memory: `${(os.totalmem() / 1024 / MB).toFixed(1)} GiB`,
    node: process.version,
    image: image.image,
    compileCache: cacheSetting,
    date: new Date().toISOString(),
    command: `npm run bench${quick ? ' -- --quick' : ''}`,
  };
  // A partial run (--only) or another checkout (--source) does not replace the recorded results;
  // a quick run records its own, beside the work files, so the full run's stay in bench/results.json.
  const complete = onlyAt < 0 && sourceAt < 0;
  const resultsFile = quick
    ? path.join(BENCH_DIR, '.work', 'results-quick.json')
    : path.join(BENCH_DIR, 'results.json');
  if (complete) {
    fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
    fs.writeFileSync(resultsFile, `${JSON.stringify({ machine, benchmarks: results }, null, 2)}\n`);
    if (!quick && (await updatePerformanceDoc()))
      log('docs/performance.md: the results table is updated');
  }
  log('');
  log(table(results));
  for (const note of notes) log(`- ${note}`);
  if (profileDir) log(`CPU profiles of the services: ${profileDir}`);
  const took = ((performance.now() - started) / 1000).toFixed(0);
  log(
    `\n${machine.cpus} × ${machine.model}, ${machine.memory}, Node ${machine.node}, compile cache: ${compileCache ? 'warmed' : 'none'}; ${took} s` +
      (complete ? `; ${path.relative(process.cwd(), resultsFile)} written` : ''),
  );
  return 0;
}

/** Runs this benchmark run again under `node`, with the same arguments; its exit code. */
function rerun(node: string, argv: string[]): Promise<number> {
  const child = spawn(node, [__filename, ...argv], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
