import * as fs from 'node:fs';
import * as path from 'node:path';
import * as prettier from 'prettier';
import type { BenchResult } from './lib';

// `npm run bench:readme`: the results table of docs/performance.md, from bench/results.json. A
// complete `npm run bench` does the same after writing results.json.

export const PERFORMANCE_DOC = path.resolve(__dirname, '..', '..', 'docs', 'performance.md');
export const RESULTS = path.resolve(__dirname, '..', '..', 'bench', 'results.json');
const START = '<!-- bench:results -->';
const END = '<!-- /bench:results -->';

/** Under the table when a row's baseline is the peer: what the peer is. */
export const PEER_LINE =
  '(peer): the baseline is the peer, `bench/peer/`, the loader a user writes without this project: ' +
  'a Functions Framework function that creates the `@google-cloud/bigquery` and `@google-cloud/storage` ' +
  'clients when it loads and, for each finalized event, runs one ' +
  '`table.load(storage.bucket(b).file(n))` (autodetect, header row skipped) and waits for it, ' +
  'answering 204 or 500; no duplicate check, no head check, no claims. It runs on the same Node, ' +
  'with the same compile cache and against the same test servers as the service.';

export interface Machine {
  cpus: number;
  model: string;
  memory: string;
  node: string;
  /** The Dockerfile's runtime stage the run measured. */
  image?: string;
  compileCache?: string;
  date: string;
  command: string;
}

/** As results.json holds them; runs before the rounds have no spread. */
export interface Results {
  machine: Machine;
  benchmarks: (Omit<BenchResult, 'min' | 'max' | 'rounds'> &
    Partial<Pick<BenchResult, 'min' | 'max' | 'rounds'>>)[];
}

/** A Markdown table of the results. */
export function table(results: Results['benchmarks']): string {
  const rows = [
    ['benchmark', 'value', 'baseline', 'ratio', 'min–max', 'rounds', 'target', 'met'],
    ['---', '---:', '---:', '---:', '---:', '---:', '---', '---'],
    ...results.map((r) => [
      r.name,
      `${r.value} ${r.unit}`,
      `${r.baseline} ${r.unit}${r.against ? ` (${r.against})` : ''}`,
      String(r.ratio),
      r.min === undefined ? '–' : `${r.min}–${r.max}`,
      r.rounds === undefined ? '–' : String(r.rounds),
      r.target ?? 'reported',
      r.met === null ? '–' : r.met ? 'yes' : '**no**',
    ]),
  ];
  return rows.map((row) => `| ${row.join(' | ')} |`).join('\n');
}

/** The document with the text between the two markers replaced by the results, formatted as the repo is. */
export async function renderResults(doc: string, results: Results): Promise<string> {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start)
    throw new Error(`docs/performance.md has no ${START} … ${END} section`);
  const m = results.machine;
  const runtime = `Node ${m.node}${m.image ? `, the runtime of the image's \`${m.image}\`` : ''}`;
  const section = [
    START,
    '',
    `Latest full run, \`${m.command}\` (${m.cpus} × ${m.model} vCPU, ${m.memory}, ${m.date.slice(0, 10)}),`,
    'from `bench/results.json` by `npm run bench:readme`.',
    `Runtime: ${runtime}.`,
    `Compile cache: ${m.compileCache ?? 'none'}.`,
    '',
    table(results.benchmarks),
    '',
    ...(results.benchmarks.some((r) => r.against === 'peer') ? [PEER_LINE, ''] : []),
    END,
  ].join('\n');
  const text = doc.slice(0, start) + section + doc.slice(end + END.length);
  const options = (await prettier.resolveConfig(PERFORMANCE_DOC)) ?? {};
  return prettier.format(text, { ...options, parser: 'markdown' });
}

export function readResults(file = RESULTS): Results {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Results;
}

/** Rewrites the table in docs/performance.md from results.json; whether it changed. */
export async function updatePerformanceDoc(): Promise<boolean> {
  const before = fs.readFileSync(PERFORMANCE_DOC, 'utf8');
  const after = await renderResults(before, readResults());
  if (after !== before) fs.writeFileSync(PERFORMANCE_DOC, after);
  return after !== before;
}

if (require.main === module) {
  updatePerformanceDoc().then(
    (changed) => process.stdout.write(`docs/performance.md ${changed ? 'updated' : 'unchanged'}\n`),
    (error: unknown) => {
      process.stderr.write(`bench:readme: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
