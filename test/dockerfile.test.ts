/**
 * No Docker engine here, so the image is proven another way: the build stage's context is a plain
 * copy of the repository (as .dockerignore leaves it) with the repository's own build output, its
 * shell steps are run there, the file set the runtime stage's COPY lines name is assembled from it
 * with Docker's plain COPY rules (a missing source is an error, as without BuildKit), its
 * `npm ci --omit=dev --omit=optional` is run, and its own CMD is started under Node 22 with its own
 * ENV against the Cloud Storage and BigQuery test servers; then a finalized event must load.
 * Run alone with: npx mocha --no-config --timeout 300000 dist/test/dockerfile.test.js
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import picomatch from 'picomatch';
import { startBigQueryServer, type BigQueryServer } from './servers/bigquery-server';
import { startGcsServer, type GcsServer } from './servers/gcs-server';

const ROOT = path.resolve(__dirname, '..', '..');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Dockerfile text -> stages of instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (line.trim() === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = '';
  }
  if (pending.trim() !== '') logical.push(pending.trim());
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const op = (match[1] ?? '').toUpperCase();
    const args = match[2] ?? '';
    if (op === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/).filter((t) => !t.startsWith('--'));
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${op} before FROM`);
      stage.instructions.push({ op, args });
    }
  }
  return stages;
}

/** Whitespace-separated words, with "double" and 'single' quotes kept together. */
function words(text: string): string[] {
  return [...text.matchAll(/(?:[^\s"']+|"(?:[^"\\]|\\.)*"|'[^']*')+/g)].map((m) =>
    m[0].replace(
      /"((?:[^"\\]|\\.)*)"|'([^']*)'/g,
      (_all, dq: string | undefined, sq: string | undefined) =>
        dq !== undefined ? dq.replace(/\\(.)/g, '$1') : (sq ?? ''),
    ),
  );
}

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((i) => i.op === 'ENV')) {
    const tokens = words(i.args);
    if (tokens[0]?.includes('=')) {
      for (const t of tokens) env[t.slice(0, t.indexOf('='))] = t.slice(t.indexOf('=') + 1);
    } else if (tokens[0] !== undefined) {
      env[tokens[0]] = tokens.slice(1).join(' ');
    }
  }
  return env;
}

function workdirOf(stage: Stage): string {
  const dirs = stage.instructions.filter((i) => i.op === 'WORKDIR').map((i) => i.args.trim());
  const dir = dirs.at(-1);
  if (!dir || !dir.startsWith('/'))
    throw new Error(`stage ${stage.name ?? stage.image} has no absolute WORKDIR`);
  return dir;
}

function cmdOf(stage: Stage): string[] {
  const cmd = stage.instructions.filter((i) => i.op === 'CMD').at(-1);
  if (!cmd) throw new Error('the runtime stage has no CMD');
  const parsed: unknown = JSON.parse(cmd.args);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string'))
    throw new Error('CMD is not exec form');
  return parsed as string[];
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}
function parseCopy(args: string): Copy {
  const tokens = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : words(args);
  const flags = tokens.filter((t) => t.startsWith('--'));
  const paths = tokens.filter((t) => !t.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  const dest = paths.at(-1);
  if (dest === undefined || paths.length < 2)
    throw new Error(`COPY ${args}: needs a source and a destination`);
  return { from, sources: paths.slice(0, -1), dest };
}

/** .dockerignore patterns, applied to a path relative to the context (and to each of its parents). */
function dockerignore(root: string): (relative: string) => boolean {
  const file = path.join(root, '.dockerignore');
  const patterns = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'))
    : [];
  const rules = patterns.map((p) => {
    const negate = p.startsWith('!');
    const glob = (negate ? p.slice(1) : p).replace(/^\/+/, '').replace(/\/+$/, '');
    return { negate, match: picomatch(glob, { dot: true }) };
  });
  return (relative) => {
    const parts = relative.split('/');
    let ignored = false;
    for (let n = 1; n <= parts.length; n++) {
      const prefix = parts.slice(0, n).join('/');
      for (const rule of rules) if (rule.match(prefix)) ignored = !rule.negate;
      if (ignored) return true;
    }
    return ignored;
  };
}

function copyInto(source: string, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.cpSync(source, target, { recursive: true });
}

const outDir =
  (
    JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as {
      compilerOptions?: { outDir?: string };
    }
  ).compilerOptions?.outDir?.replace(/^\.\//, '') ?? 'dist';

/**
 * The build stage's WORKDIR as it ends, in `context`: a plain copy of the build context (what
 * .dockerignore leaves of `root`) with the repository's own build output for `npm run build`, and
 * the stage's other shell steps run there. Its `npm ci` is not run: only the build needs it.
 */
function assembleBuild(
  stage: Stage,
  root: string,
  context: string,
  log: (line: string) => void,
): void {
  const ignored = dockerignore(root);
  fs.cpSync(root, context, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(root, source).split(path.sep).join('/');
      return relative === '' || !ignored(relative);
    },
  });
  for (const i of stage.instructions.filter((i) => i.op === 'RUN')) {
    const argv = words(i.args);
    if (argv[0] === 'npm' && argv[1] === 'ci') {
      log(`build stage: RUN ${i.args}: skipped, the build output is the repository's own`);
    } else if (argv[0] === 'npm' && argv[1] === 'run' && argv[2] === 'build') {
      fs.symlinkSync(path.join(ROOT, outDir), path.join(context, outDir));
      log(`build stage: RUN ${i.args}: the repository's ${outDir}/`);
    } else {
      execFileSync('sh', ['-c', i.args], { cwd: context, stdio: ['ignore', 'ignore', 'pipe'] });
      log(`build stage: RUN ${i.args}`);
    }
  }
}

/**
 * Builds the runtime stage's file set in `app`: COPY lines from the build stage's WORKDIR (as
 * `assembleBuild` left it in `context`) or the build context, RUN lines as far as they are npm ci.
 */
function assembleRuntime(
  stages: Stage[],
  context: string,
  app: string,
  node: string,
  log: (line: string) => void,
): void {
  const runtime = stages.at(-1) as Stage;
  const workdir = workdirOf(runtime);
  const env: Record<string, string> = {};
  const ignored = dockerignore(ROOT);

  for (const i of runtime.instructions) {
    if (i.op === 'ENV') Object.assign(env, envOf({ ...runtime, instructions: [i] }));
    if (i.op === 'COPY' || i.op === 'ADD') {
      const copy = parseCopy(i.args);
      const stage = copy.from === undefined ? undefined : stages.find((s) => s.name === copy.from);
      if (copy.from !== undefined && !stage)
        throw new Error(`COPY --from=${copy.from}: no such stage`);
      const base = stage ? workdirOf(stage) : '/';
      const sources: string[] = [];
      for (const source of copy.sources) {
        const inStage = path.posix.resolve(base, source);
        const relative = path.posix.relative(base, inStage);
        if (relative.startsWith('..'))
          throw new Error(`COPY ${source}: outside ${base}, cannot map it to the repository`);
        const fromBuild = relative === outDir || relative.startsWith(`${outDir}/`);
        if (/[*?[]/.test(source))
          throw new Error(`COPY ${source}: a wildcard that may match nothing needs BuildKit`);
        const root = stage ? context : ROOT;
        if (!fs.existsSync(path.join(root, relative))) {
          throw new Error(
            `COPY ${source}: ${relative} does not exist${fromBuild ? ' (run npm run build first)' : ''}`,
          );
        }
        const matches = [relative];
        for (const m of matches) {
          if (!stage && ignored(m)) {
            throw new Error(
              `COPY ${source}: ${m} is excluded from the build context by .dockerignore`,
            );
          }
        }
        sources.push(...matches);
      }
      const dest = path.posix.resolve(workdir, copy.dest);
      if (!dest.startsWith(workdir))
        throw new Error(`COPY to ${copy.dest}: outside WORKDIR ${workdir}`);
      const target = path.join(app, path.posix.relative(workdir, dest));
      const intoDir = copy.dest.endsWith('/') || copy.sources.length > 1;
      for (const s of sources) {
        const from = path.join(copy.from === undefined ? ROOT : context, s);
        if (fs.statSync(from).isDirectory()) copyInto(from, target);
        else copyInto(from, intoDir ? path.join(target, path.posix.basename(s)) : target);
        log(`COPY ${s} -> ${path.relative(app, target) || '.'}`);
      }
    } else if (i.op === 'RUN') {
      for (const command of i.args.split('&&').map((c) => c.trim())) {
        const argv = words(command);
        if (argv[0] === 'npm' && argv[1] === 'ci') {
          const args = [
            ...new Set([...argv.slice(1), '--prefer-offline', '--no-audit', '--no-fund']),
          ];
          const started = Date.now();
          execFileSync('npm', args, { cwd: app, stdio: ['ignore', 'ignore', 'pipe'] });
          log(`RUN npm ${args.join(' ')} (${Date.now() - started} ms)`);
        } else if (argv[0] === 'npm' && argv[1] === 'cache') {
          log(`RUN ${command}: skipped, it only shrinks the image`);
        } else if (argv[0] === 'node') {
          execFileSync(node, argv.slice(1), {
            cwd: app,
            env: {
              PATH: process.env.PATH,
              METADATA_SERVER_DETECTION: 'none',
              ...inApp(env, workdir, app),
            },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          log(`RUN ${command} (Node 22)`);
        } else if (argv[0] === 'chown') {
          log(`RUN ${command}: skipped, this test runs as one user`);
        } else {
          throw new Error(`RUN ${command}: this test does not know how to emulate it`);
        }
      }
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === 'object'
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** ENV values, with paths under the image's WORKDIR moved to where this test assembled it. */
function inApp(env: Record<string, string>, workdir: string, app: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.startsWith(`${workdir}/`) ? path.join(app, v.slice(workdir.length)) : v,
    ]),
  );
}

/** The Node 22 binary npm's cache holds for `npm exec --package=node@22` (downloaded once). */
function node22(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'npm',
      [
        'exec',
        '--yes',
        '--package=node@22',
        '--',
        'node',
        '-p',
        'process.execPath + " " + process.version',
      ],
      { cwd: os.tmpdir(), encoding: 'utf8', timeout: 180_000 },
      (error, stdout, stderr) => {
        if (error)
          return reject(new Error(`npm exec --package=node@22 failed: ${stderr || error.message}`));
        const [file = '', version = ''] = stdout.trim().split('\n').at(-1)?.split(' ') ?? [];
        if (!version.startsWith('v22.'))
          return reject(new Error(`expected Node 22, got ${version}`));
        resolve(file);
      },
    );
  });
}

const stages = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = stages.at(-1) as Stage;
const build = stages.find((s) => s.name !== undefined && stages.indexOf(s) < stages.length - 1);
const runs = (stage: Stage | undefined) =>
  (stage?.instructions ?? []).filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile', () => {
  it('has a build stage that compiles with the dev dependencies', () => {
    expect(build, 'a named build stage before the runtime stage').to.not.equal(undefined);
    expect(
      runs(build).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev|--production/.test(r)),
    ).to.equal(true);
    expect(runs(build).some((r) => /\bnpm run build\b/.test(r))).to.equal(true);
  });

  it('runs Node 22 LTS from a pinned slim image in the runtime stage', () => {
    expect(runtime.image).to.match(/^node:22\.\d+\.\d+-[a-z]+-slim$/);
  });

  it('installs production dependencies only, and copies the build output but not the tests', () => {
    expect(runs(runtime).some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).to.equal(true);
    const copies = runtime.instructions
      .filter((i) => i.op === 'COPY')
      .map((i) => parseCopy(i.args));
    const sources = copies.flatMap((c) => c.sources);
    expect(sources.filter((s) => /dist\/?$|dist\/test|node_modules/.test(s))).to.deep.equal([]);
    expect(sources.some((s) => s.endsWith('dist/src'))).to.equal(true);
  });

  it('runs as a non-root user with the production environment', () => {
    const users = runtime.instructions.filter((i) => i.op === 'USER').map((i) => i.args.trim());
    expect(users.at(-1))
      .to.be.a('string')
      .and.not.match(/^(root|0)(:.*)?$/);
    expect(envOf(runtime)).to.include({
      NODE_ENV: 'production',
      INGEST_BACKEND: 'gcp',
      PORT: '8080',
    });
  });

  it('starts the Functions Framework target ingest, signature http, without npx', () => {
    const cmd = cmdOf(runtime);
    expect(cmd[0]).to.equal('node');
    expect(cmd).to.include.members(['--target=ingest', '--signature-type=http']);
    const main = cmd[1] ?? '';
    const pkg = JSON.parse(
      fs.readFileSync(
        path.join(ROOT, 'node_modules/@google-cloud/functions-framework/package.json'),
        'utf8',
      ),
    ) as { bin: Record<string, string> };
    expect(path.normalize(main)).to.equal(
      path.normalize(
        path.join(
          'node_modules/@google-cloud/functions-framework',
          pkg.bin['functions-framework'] ?? '',
        ),
      ),
    );
  });

  it('uses no syntax that only BuildKit reads', () => {
    const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(text).not.to.match(/^#\s*syntax=/im);
    for (const stage of stages) {
      for (const i of stage.instructions) {
        expect(i.args, `${i.op} ${i.args}`).not.to.match(/--(mount|link|chmod|parents|exclude)\b/);
        expect(i.args, `${i.op} ${i.args}`).not.to.match(/<<-?\s*["']?[A-Z]+/);
        if (i.op === 'COPY' || i.op === 'ADD') {
          for (const source of parseCopy(i.args).sources)
            expect(source, `${i.op} ${i.args}`).not.to.match(/[*?[]/);
        }
      }
    }
  });

  it('gathers ingest.yaml and schemas/ for the image when the repository has them, and none when not', function () {
    this.timeout(30_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-context-'));
    try {
      const gathered = (root: string) => {
        const context = path.join(dir, `${path.basename(root)}-context`);
        assembleBuild(build as Stage, root, context, () => undefined);
        // the runtime stage's COPY of a folder from the build stage
        const copy = runtime.instructions
          .filter((i) => i.op === 'COPY')
          .map((i) => parseCopy(i.args))
          .find((c) => c.from !== undefined && c.sources.some((s) => s.endsWith('/')));
        const folder = path.join(
          context,
          path.posix.relative(workdirOf(build as Stage), copy?.sources[0] ?? ''),
        );
        return fs.readdirSync(folder, { recursive: true }).map(String).sort();
      };
      const bare = path.join(dir, 'bare');
      fs.mkdirSync(bare);
      fs.copyFileSync(path.join(ROOT, '.dockerignore'), path.join(bare, '.dockerignore'));
      fs.writeFileSync(path.join(bare, 'package.json'), '{}');
      expect(gathered(bare)).to.deep.equal([]);
      const configured = path.join(dir, 'configured');
      fs.cpSync(bare, configured, { recursive: true });
      fs.writeFileSync(path.join(configured, 'ingest.yaml'), 'location: US\n');
      fs.mkdirSync(path.join(configured, 'schemas'));
      fs.writeFileSync(path.join(configured, 'schemas', 'sales.json'), '[]');
      expect(gathered(configured)).to.deep.equal(['ingest.yaml', 'schemas', 'schemas/sales.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps local data, tests, dependencies and git out of the build context', () => {
    const ignored = dockerignore(ROOT);
    for (const p of [
      'node_modules',
      'dist',
      'local-data',
      'test',
      'bench',
      '.git',
      'local-data/buckets/x.csv',
    ]) {
      expect(ignored(p), p).to.equal(true);
    }
    for (const p of ['src/index.ts', 'package.json', 'package-lock.json', 'tsconfig.json']) {
      expect(ignored(p), p).to.equal(false);
    }
  });
});

describe('Dockerfile runtime stage, run under Node 22 without Docker', function () {
  this.timeout(300_000);
  let dir = '';
  let server: ChildProcess | undefined;
  let output = '';
  let port = 0;
  let gcs: GcsServer | undefined;
  let bq: BigQueryServer | undefined;
  const csv = fs.readFileSync(path.join(ROOT, 'fixtures', 'us-states.csv'));
  const steps: string[] = [];

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-'));
    const context = path.join(dir, 'context');
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    const started = Date.now();
    const node = await node22();
    steps.push(`Node 22 at ${node} (${Date.now() - started} ms so far)`);
    assembleBuild(build as Stage, ROOT, context, (line) => steps.push(line));
    assembleRuntime(stages, context, app, node, (line) => steps.push(line));

    gcs = await startGcsServer();
    bq = await startBigQueryServer({ gcs, autoCreateDatasets: true });
    gcs.put('demo', 'us-states.csv', csv, { contentType: 'text/csv' });

    port = await freePort();
    const [, ...args] = cmdOf(runtime);
    server = spawn(node, args, {
      cwd: app,
      env: {
        PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}`,
        HOME: dir,
        CLOUDSDK_CONFIG: dir,
        ...inApp(envOf(runtime), workdirOf(runtime), app),
        STORAGE_EMULATOR_HOST: gcs.url,
        BIGQUERY_EMULATOR_HOST: bq.url,
        GOOGLE_CLOUD_PROJECT: 'test-project',
        PORT: String(port),
        METADATA_SERVER_DETECTION: 'none',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (server.exitCode !== null)
        throw new Error(`the service exited with ${server.exitCode}:\n${output}`);
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline)
        throw new Error(`the service did not answer /health within 60 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    steps.push(`service ready after ${Date.now() - started} ms`);
  });

  after(async () => {
    for (const line of steps) console.log(`      ${line}`);
    const child = server;
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(
        () =>
          child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'),
        5_000,
      );
      await exited;
      clearTimeout(timer);
    }
    await bq?.close();
    await gcs?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("has no dev-only or optional package (DuckDB's native library) and no test in the image", () => {
    const app = path.join(dir, 'app');
    // package-lock.json marks `dev` every package that only the devDependencies need, and `optional`
    // the optional ones: in production only DuckDB's platform binaries
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const left = Object.entries(lock.packages).filter(
      ([p, info]) => p !== '' && (info.dev === true || info.optional === true),
    );
    expect(left.filter(([p]) => p.includes('@duckdb/node-bindings-'))).to.not.deep.equal([]);
    const present = left.map(([p]) => p).filter((p) => fs.existsSync(path.join(app, p)));
    expect(present).to.deep.equal([]);
    expect(
      fs.existsSync(path.join(app, 'node_modules', '@google-cloud', 'functions-framework')),
    ).to.equal(true);
    expect(fs.existsSync(path.join(app, 'dist', 'test'))).to.equal(false);
  });

  it('ships the compile cache warmed at build for the modules a cold start loads', () => {
    const cache = envOf(runtime).NODE_COMPILE_CACHE ?? '';
    expect(cache.startsWith(`${workdirOf(runtime)}/`), 'NODE_COMPILE_CACHE under WORKDIR').to.equal(
      true,
    );
    const folder = inApp({ cache }, workdirOf(runtime), path.join(dir, 'app')).cache ?? '';
    const files = fs
      .readdirSync(folder, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile());
    expect(files.length).to.be.greaterThan(50);
  });

  it('loads a finalized object sent as a binary-mode CloudEvent, on the gcp backend', async () => {
    const object = gcs?.stat('demo', 'us-states.csv');
    const rows =
      csv
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '').length - 1;
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: {
        'ce-specversion': '1.0',
        'ce-id': `dockerfile-test-${Date.now()}`,
        'ce-source': '//storage.googleapis.com/projects/_/buckets/demo',
        'ce-type': 'google.cloud.storage.object.v1.finalized',
        'ce-subject': 'objects/us-states.csv',
        'ce-time': new Date().toISOString(),
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        bucket: 'demo',
        name: 'us-states.csv',
        generation: String(object?.generation),
        size: String(object?.size),
        contentType: 'text/csv',
      }),
    });
    const text = await response.text();
    expect(response.status, `${text}\n--- service output ---\n${output}`).to.equal(200);
    const body = JSON.parse(text) as {
      outcome?: string;
      objects?: { outcome?: string; rows?: number }[];
    };
    expect(body.outcome, text).to.equal('loaded');
    expect(body.objects?.[0]?.rows, text).to.equal(rows);
    expect(bq?.rows('test-project', 'ingest', 'us_states')).to.equal(rows);
  });
});
