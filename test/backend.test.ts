import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/server';

/** Builds a backend in a fresh process and lists the heavy packages it loaded. */
function packagesLoadedBy(backend: 'local' | 'gcp'): string[] {
  const script = `
    const { createBackend } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'src', 'receiver', 'backend.js'))});
    const { loadConfig } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'src', 'config', 'index.js'))});
    const config = loadConfig({ INGEST_BACKEND: '${backend}', INGEST_CONFIG: '' }, () => { throw Object.assign(new Error('none'), { code: 'ENOENT' }); });
    createBackend(config).then(() => {
      const names = Object.keys(require.cache)
        .map((file) => /node_modules\\/(@[^/]+\\/[^/]+|[^@/][^/]*)/.exec(file)?.[1])
        .filter(Boolean);
      console.log(JSON.stringify([...new Set(names)]));
    });`;
  return runScript(script, {}) as string[];
}

/** Runs `script` in a fresh Node process; what it prints is JSON. */
function runScript(script: string, env: Record<string, string>): unknown {
  const result = spawnSync(process.execPath, ['-e', script], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      METADATA_SERVER_DETECTION: 'none',
      GOOGLE_CLOUD_PROJECT: 'test-project',
      ...env,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(result.status, result.stderr).to.equal(0);
  return JSON.parse(result.stdout);
}

describe('backends load only their own clients', () => {
  it('the local backend loads DuckDB and none of the Google clients', () => {
    const loaded = packagesLoadedBy('local');
    expect(loaded).to.include('@duckdb/node-api');
    expect(loaded).to.not.include.members(['@google-cloud/bigquery']);
    expect(loaded).to.not.include('@google-cloud/storage');
    expect(loaded).to.not.include('@google-cloud/pubsub');
  });

  it('the gcp backend loads Cloud Storage and BigQuery but not DuckDB', () => {
    const loaded = packagesLoadedBy('gcp');
    expect(loaded).to.include.members(['@google-cloud/storage', '@google-cloud/bigquery']);
    expect(loaded).to.not.include('@duckdb/node-api');
    expect(loaded).to.not.include('@google-cloud/pubsub');
  });

  it('the entry module loads the status page only for the local backend', () => {
    const statusModules = (backend: 'local' | 'gcp') => {
      const script = `
        require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'src', 'index.js'))});
        const status = Object.keys(require.cache).filter((file) => file.includes('/dist/src/status/'));
        console.log(JSON.stringify(status.length));
        process.exit(0);`;
      return runScript(script, { INGEST_BACKEND: backend, INGEST_CONFIG: '', LOG_LEVEL: 'warn' });
    };
    expect(statusModules('gcp')).to.equal(0);
    expect(statusModules('local')).to.be.greaterThan(0);
  });
});
