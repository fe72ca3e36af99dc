import * as fs from 'node:fs';
import * as path from 'node:path';
import { finalizedEvent, sendEvent, type EventAnswer } from '../src/cli/events';
import type { StoredObject } from '../src/stores/store';
import { writeCsv } from './csv';
import {
  MB,
  expectOutcome,
  mapLimit,
  putLocal,
  result,
  round,
  seconds,
  startIngest,
  statLocal,
  type BenchOptions,
  type BenchReport,
  type Service,
} from './lib';

const CONCURRENCY = 4;
type RouteName = 'lineage' | 'plain';
/** `new`: objects never loaded before; `replace`: a new generation of objects loaded before. */
type Workload = 'new' | 'replace';
const CONFIG = `
routes:
  - match: "lineage/**/*.csv"
    table: with_lineage
    lineage: true
  - match: "plain/**/*.csv"
    table: plain
  - match: "**/*.csv"
`;

interface Delivered {
  outcome: string;
  rows?: number;
  jobObjects?: number;
  objectRows?: number;
  replacedRows?: number;
}

interface Files {
  root: string;
  originals: string;
  names: string[];
  rows: number[];
  bytes: number;
}

/**
 * 5. Lineage, locally: the same files (20 of 2 MB; --quick: 8 of 512 KB) through an append route
 * with `lineage: true` and through a plain append route, 4 events at a time each, in two workloads:
 * `new`, the files under new names each round (the lineage route writes three more columns and
 * looks for earlier rows of each object), and `replace`, a new generation of every file each round
 * (copied over it, after an unmeasured first load): the lineage route replaces each file's rows in
 * the load's transaction, the plain one appends them again. 5 rounds (--quick: 3) taking turns at
 * going first; ratio = lineage MB/s / plain MB/s.
 */
export async function lineageLocal(options: BenchOptions): Promise<BenchReport> {
  const files = generate(options);
  const config = path.join(options.work, 'ingest.yaml');
  fs.writeFileSync(config, CONFIG);
  const { root } = files;
  const service = await startIngest(options, { LOCAL_DATA_DIR: root, INGEST_CONFIG: config });
  const rates = {
    new: { lineage: [] as number[], plain: [] as number[] },
    replace: { lineage: [] as number[], plain: [] as number[] },
  };
  try {
    // The first event builds the backend (loads DuckDB, creates the warehouse file): not measured.
    const warm = await putLocal(root, 'bench', 'warm-up.csv', 'a,b\n1,x\n');
    expectOutcome(await sendEvent(service.url, finalizedEvent(warm)), 'loaded', 'lineage warm-up');
    // What the replace workload replaces from its first round on.
    for (const route of ['lineage', 'plain'] as const)
      await deliver(service, files, route, 'replace', 0);
    const rounds = options.quick ? 3 : 5;
    for (let r = 1; r <= rounds; r++) {
      const order: RouteName[] = r % 2 === 1 ? ['lineage', 'plain'] : ['plain', 'lineage'];
      for (const workload of ['new', 'replace'] as const) {
        for (const route of order) {
          const elapsed = await deliver(service, files, route, workload, r);
          rates[workload][route].push(files.bytes / MB / elapsed);
        }
      }
      const rate = (workload: Workload, route: RouteName) =>
        round(rates[workload][route][r - 1] ?? NaN);
      options.log(
        `  ${r}: new: lineage ${rate('new', 'lineage')} MB/s, plain ${rate('new', 'plain')} MB/s; ` +
          `replace: lineage ${rate('replace', 'lineage')} MB/s, plain ${rate('replace', 'plain')} MB/s`,
      );
    }
  } finally {
    await service.stop();
  }
  return {
    results: (['new', 'replace'] as const).map((workload) =>
      result(
        `lineage-local-${workload}`,
        'MB/s',
        rates[workload].lineage,
        rates[workload].plain,
        // Replacing (delete and insert) against appending again is reported, not held to a target.
        workload === 'new' ? '>= 0.8' : null,
      ),
    ),
    notes: [],
  };
}

function generate(options: BenchOptions): Files {
  const count = options.quick ? 8 : 20;
  const fileBytes = options.quick ? 512 * 1024 : 2 * MB;
  const root = path.join(options.work, 'data');
  const originals = path.join(options.work, 'files');
  fs.mkdirSync(originals);
  const names = Array.from({ length: count }, (_, i) => `part-${String(i).padStart(3, '0')}.csv`);
  const rows = names.map((name, i) =>
    writeCsv(path.join(originals, name), fileBytes, i + 1, i * 1_000_000 + 1),
  );
  const bytes = names.reduce((sum, name) => sum + fs.statSync(path.join(originals, name)).size, 0);
  const total = rows.reduce((sum, n) => sum + n, 0);
  options.log(`  generated ${count} files, ${round(bytes / MB)} MB, ${total} rows`);
  return { root, originals, names, rows, bytes };
}

/**
 * Puts the files where `route` reads them for `workload` (unmeasured), then sends their events;
 * the seconds until every one is answered `loaded`.
 */
async function deliver(
  service: Service,
  files: Files,
  route: RouteName,
  workload: Workload,
  r: number,
): Promise<number> {
  const folder = workload === 'new' ? `${route}/round-${r}` : `${route}/same`;
  const objects: StoredObject[] = [];
  for (const name of files.names) {
    const target = path.join(files.root, 'buckets', 'bench', folder, name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // A copy, renamed over the last one: a new generation of the object.
    fs.copyFileSync(path.join(files.originals, name), `${target}.copy`);
    fs.renameSync(`${target}.copy`, target);
    objects.push(await statLocal(files.root, 'bench', `${folder}/${name}`));
  }
  const t0 = performance.now();
  const answers = await mapLimit(objects, CONCURRENCY, (object) =>
    sendEvent(service.url, finalizedEvent(object)),
  );
  const elapsed = seconds(t0);
  const replaced = route === 'plain' ? undefined : workload === 'new' || r === 0 ? 0 : 'all';
  check(answers, `${route} ${workload} round ${r}`, files.rows, replaced);
  return elapsed;
}

/** Every file loaded with its rows, replacing none, all of its earlier rows, or (plain) saying nothing. */
function check(
  answers: EventAnswer[],
  what: string,
  rows: number[],
  replaced: 0 | 'all' | undefined,
): void {
  answers.forEach((answer, i) => {
    const file = `${what}, file ${i}`;
    expectOutcome(answer, 'loaded', file);
    const object = (answer.body as { objects: Delivered[] }).objects[0];
    // A member of a coalesced job has its own rows in objectRows; a job of one, in rows.
    const loaded = (object?.jobObjects ?? 1) > 1 ? object?.objectRows : object?.rows;
    if (loaded !== rows[i]) throw new Error(`${file}: ${loaded} rows, not ${rows[i]}`);
    const expected = replaced === 'all' ? rows[i] : replaced;
    if (object?.replacedRows !== expected) {
      throw new Error(`${file}: replaced ${object?.replacedRows} rows, not ${expected}`);
    }
  });
}
