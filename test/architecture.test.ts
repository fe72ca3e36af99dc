import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/server';

const SRC = path.join(REPO_ROOT, 'src');

/** The folders under src/, lowest first: a file imports only from its own folder or one ranked lower. */
const LAYERS: Record<string, number> = {
  core: 0,
  config: 1,
  schema: 2,
  history: 2,
  stores: 3,
  warehouses: 4,
  objects: 5,
  batching: 6,
  ingest: 7,
  receiver: 8,
  status: 9,
  deploy: 9,
  cli: 10,
  'index.ts': 10,
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative module a file names: static imports and exports (type-only too), import() and require(). */
function relativeSpecifiers(text: string): string[] {
  const pattern = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)'(\.[^']*)'/gm;
  return [...text.matchAll(pattern)].map((match) => match[1] as string);
}

function resolveModule(from: string, specifier: string): string {
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [`${base}.ts`, path.join(base, 'index.ts')];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`${path.relative(REPO_ROOT, from)}: cannot resolve '${specifier}'`);
  return found;
}

function layerOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0] as string;
}

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const targets = relativeSpecifiers(text).filter((specifier) => !specifier.endsWith('.json'));
    graph.set(
      file,
      targets.map((specifier) => resolveModule(file, specifier)),
    );
  }
  return graph;
}

/** One cycle per strongly connected part found by depth-first search, as the files along it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('the layers of src/', () => {
  const graph = importGraph();
  const name = (file: string) => path.relative(SRC, file);

  it('puts every file in a known layer', () => {
    const unknown = [...graph.keys()].map(layerOf).filter((layer) => !(layer in LAYERS));
    expect(unknown).to.deep.equal([]);
  });

  it('imports only from the same folder or a lower one', () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      for (const target of targets) {
        const from = layerOf(file);
        const to = layerOf(target);
        if (from !== to && (LAYERS[to] as number) >= (LAYERS[from] as number)) {
          upward.push(`${name(file)} → ${name(target)}`);
        }
      }
    }
    expect(upward).to.deep.equal([]);
  });

  it('has no import cycle, type-only imports included', () => {
    expect(cycles(graph).map((cycle) => cycle.map(name).join(' → '))).to.deep.equal([]);
  });

  it('sees a cycle and an upward import when there is one', () => {
    const core = path.join(SRC, 'core', 'a.ts');
    const cli = path.join(SRC, 'cli', 'b.ts');
    const looped = new Map([
      [core, [cli]],
      [cli, [core]],
    ]);
    expect(cycles(looped)).to.have.length(1);
    expect(LAYERS[layerOf(cli)]).to.be.greaterThan(LAYERS[layerOf(core)] as number);
  });
});
