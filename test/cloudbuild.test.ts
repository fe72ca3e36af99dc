import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { NO_ACCOUNT, gcloudOrSkip, isolatedEnv } from './helpers/gcloud';

const ROOT = path.resolve(__dirname, '..', '..');
const CONFIG = path.join(ROOT, 'cloudbuild.yaml');
const IMAGE = '${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/gcs-bq-ingest:$SHORT_SHA';

interface Step {
  id?: string;
  name: string;
  entrypoint?: string;
  args?: string[];
  env?: string[];
}
interface BuildConfig {
  steps: Step[];
  substitutions?: Record<string, string>;
  options?: Record<string, unknown>;
}

const config = parse(fs.readFileSync(CONFIG, 'utf8')) as BuildConfig;
const command = (s: Step) => [s.entrypoint ?? '', ...(s.args ?? [])].join(' ');
const stepRunning = (pattern: RegExp) => config.steps.findIndex((s) => pattern.test(command(s)));

describe('cloudbuild.yaml', () => {
  it('pins every builder image to a version', () => {
    for (const step of config.steps) {
      expect(step.name, step.id).to.match(/:[^:]*\d+\.\d+[^:]*$/);
      expect(step.name, step.id).not.to.match(/:latest$/);
    }
  });

  it('installs, lints and tests before it builds the image', () => {
    const order = [
      /^npm ci\b/,
      /^npm run lint$/,
      /^npm test$/,
      /^ build /,
      /^ push /,
      /^gcloud run deploy /,
    ].map(stepRunning);
    expect(
      order.every((i) => i >= 0),
      `steps found at ${order.join(', ')}`,
    ).to.equal(true);
    expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
  });

  it('builds, pushes and deploys the image tagged with the commit', () => {
    const build = config.steps[stepRunning(/^ build /)];
    expect(build?.args).to.include(`--tag=${IMAGE}`);
    expect(config.steps[stepRunning(/^ push /)]?.args).to.include(IMAGE);
    expect(config.steps[stepRunning(/^gcloud run deploy /)]?.args).to.include(`--image=${IMAGE}`);
  });

  it('deploys a private service, on its own service account, with settings for load jobs', () => {
    const args = config.steps[stepRunning(/^gcloud run deploy /)]?.args ?? [];
    const flag = (name: string) =>
      args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    expect(args).to.include('--no-allow-unauthenticated');
    // only Eventarc and Pub/Sub in the project call it, unless the build is told otherwise
    expect(flag('ingress')).to.equal('${_INGRESS}');
    expect(config.substitutions?._INGRESS).to.equal('internal');
    expect(flag('service-account')).to.equal(
      'gcs-bq-ingest-run@$PROJECT_ID.iam.gserviceaccount.com',
    );
    // --set-env-vars would remove every variable set on the service by hand; --update-env-vars keeps them
    expect(flag('set-env-vars')).to.equal(undefined);
    expect(flag('update-env-vars')?.split(',')).to.include('INGEST_BACKEND=gcp');
    expect(flag('min-instances')).to.equal('0');
    // the request timeout must outlast the wait for a load job (INGEST_WAIT_SECONDS=540), within Cloud Run's 3600
    expect(Number(flag('timeout'))).to.be.within(560, 3600);
    expect(Number(flag('concurrency'))).to.be.within(1, 1000);
  });

  it("keeps instances x the default batch.jobsPerDay under BigQuery's 1,500 load jobs per table a day", () => {
    const args = config.steps[stepRunning(/^gcloud run deploy /)]?.args ?? [];
    const flag = (name: string) =>
      args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    // Each instance paces its own jobs (BigQuery's default budget, 1000 a day per table).
    expect(Number(flag('max-instances')) * 1000).to.be.at.most(1500);
    // At the budget a destination's objects wait up to one token interval (86 s) in held requests:
    // 1,000,000 files a day is about 1,000 of them at once.
    expect(Number(flag('concurrency'))).to.equal(1000);
  });

  it('applies the triggers after the deploy: the project CLI prints them, bash runs them in the gcloud image', () => {
    const print = stepRunning(
      /dist\/src\/cli\/main\.js triggers --print .* > \/workspace\/triggers\.sh$/,
    );
    expect(print).to.be.greaterThan(stepRunning(/^gcloud run deploy /));
    expect(command(config.steps[print] as Step)).to.contain(
      '--project $PROJECT_ID --region ${_REGION} --bucket ${_BUCKET}',
    );
    const apply = stepRunning(/^bash \/workspace\/triggers\.sh$/);
    expect(apply).to.be.greaterThan(print);
    expect(config.steps[apply]?.name).to.match(
      /^gcr\.io\/google\.com\/cloudsdktool\/google-cloud-cli:/,
    );
  });

  it('runs no program copied from one builder image into another', () => {
    for (const step of config.steps) {
      expect(step.entrypoint ?? '', step.id).not.to.match(/^\/workspace\//);
      expect(step.args ?? [], step.id).not.to.include('/usr/local/bin/node');
    }
  });

  it('names only files that exist', () => {
    const text = fs.readFileSync(CONFIG, 'utf8');
    const named = [...text.matchAll(/\b(?:[\w-]+\/)*[\w-]+\.(?:md|yaml|json|js)\b/g)].map(
      (m) => m[0],
    );
    expect(named).to.include('dist/src/cli/main.js');
    expect(named.filter((file) => !fs.existsSync(path.join(ROOT, file)))).to.deep.equal([]);
  });

  it('gives every substitution it uses a default', () => {
    const text = fs.readFileSync(CONFIG, 'utf8').replace(/^\s*#.*$/gm, '');
    const used = new Set([...text.matchAll(/\$\{?(_[A-Z0-9_]+)/g)].map((m) => m[1]));
    expect(
      [...used].filter((u) => u !== undefined && !(u in (config.substitutions ?? {}))),
    ).to.deep.equal([]);
  });
});

// --- gcloud as the judge of the file ---

function submit(
  gcloud: string,
  file: string,
  dir: string,
): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const args = ['builds', 'submit', `--config=${file}`, '--no-source', '--project=test-project'];
  return new Promise((resolve) => {
    execFile(
      gcloud,
      args,
      { cwd: ROOT, env: isolatedEnv(dir), timeout: 30_000, encoding: 'utf8' },
      (error, _out, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stderr, ms: Date.now() - started });
      },
    );
  });
}

describe('gcloud builds submit reads cloudbuild.yaml', function () {
  this.timeout(60_000);
  let gcloud: string;
  let dir: string;

  before(function () {
    gcloud = gcloudOrSkip(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcloud-config-'));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects a build config with a wrong field (the check itself)', async () => {
    const broken = path.join(dir, 'broken.yaml');
    const text = fs.readFileSync(CONFIG, 'utf8').replace(/^(\s*)entrypoint:/m, '$1entrypont:');
    fs.writeFileSync(broken, text);
    const result = await submit(gcloud, broken, dir);
    expect(result.stderr).to.match(/interpreting .* as build config/);
    expect(result.stderr).not.to.match(NO_ACCOUNT);
  });

  it('accepts the arguments of every gcloud step, substitutions filled in', async () => {
    const values: Record<string, string> = {
      PROJECT_ID: 'test-project',
      SHORT_SHA: 'abc1234',
      ...config.substitutions,
    };
    const fill = (arg: string): string =>
      arg.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (_all, name: string) => fill(values[name] ?? ''));
    const steps = config.steps.filter((s) => s.entrypoint === 'gcloud');
    expect(steps.length).to.be.greaterThan(0);
    for (const step of steps) {
      // Cloud Build sets the project for its builders; here it is given as a flag
      const args = [...(step.args ?? []).map(fill), '--project=test-project'];
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          gcloud,
          args,
          { env: isolatedEnv(dir), timeout: 30_000, encoding: 'utf8' },
          (error, _o, stderr) =>
            resolve({
              code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
              stderr,
            }),
        );
      });
      expect(result.stderr, `${step.id}: gcloud ${args.join(' ')}`).to.match(NO_ACCOUNT);
      expect(result.code, step.id).to.equal(1);
    }
  });

  it('gets past parsing the config to the missing account, within seconds', async () => {
    const result = await submit(gcloud, CONFIG, dir);
    expect(result.stderr).not.to.match(/interpreting .* as build config/);
    expect(result.code, result.stderr).to.equal(1);
    expect(result.stderr).to.match(NO_ACCOUNT);
    expect(result.ms, 'gcloud this slow is probably waiting on the network').to.be.below(20_000);
  });
});
