import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FRAMEWORK_MAIN, REPO_ROOT } from '../helpers/server';

describe('the Functions Framework target with a bad environment', () => {
  const cases = [
    { PORT: 'abc' },
    { PORT: '65536' },
    { PORT: '0', INGEST_BACKEND: 'aws' },
    { PORT: '0', LOG_LEVEL: 'verbose' },
    { PORT: '0', INGEST_SHUTDOWN_GRACE_SECONDS: 'x' },
  ];
  for (const env of cases) {
    it(`exits 1 with one line naming the variable for ${JSON.stringify(env)}`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-startup-env-'));
      try {
        const result = spawnSync(
          process.execPath,
          [FRAMEWORK_MAIN, '--target=ingest', '--signature-type=http', `--source=${REPO_ROOT}`],
          {
            cwd: dir,
            env: { PATH: process.env.PATH, METADATA_SERVER_DETECTION: 'none', ...env },
            encoding: 'utf8',
            // a target that starts anyway would serve until killed
            timeout: 15_000,
            killSignal: 'SIGKILL',
          },
        );
        const variable = Object.keys(env).at(-1) ?? '';
        expect(result.status, result.stderr).to.equal(1);
        expect(result.stderr.trim().split('\n')).to.have.length(1);
        expect(result.stderr.trim()).to.match(
          new RegExp(`^gcs-bq-ingest: configuration error: environment: ${variable}: `),
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
