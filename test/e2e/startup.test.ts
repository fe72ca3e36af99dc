import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FRAMEWORK_MAIN, REPO_ROOT } from '../helpers/server';

describe('the Functions Framework target at start', () => {
  const cases = [
    {
      name: 'an unknown write mode',
      yaml: 'routes: [{match: "*.csv", write: upsert}]',
      line: /^gcs-bq-ingest: configuration error: ingest\.yaml: routes\[0\]\.write: Invalid enum value\. Expected 'append' \| 'truncate'/,
    },
    {
      name: 'broken YAML',
      yaml: 'routes: [',
      line: /^gcs-bq-ingest: configuration error: ingest\.yaml: line 1, column 10: /,
    },
    {
      name: 'a missing schema file',
      yaml: 'defaults: {schema: nope.json}',
      line: /^gcs-bq-ingest: configuration error: ingest\.yaml: defaults\.schema: schema file nope\.json cannot be used/,
    },
  ];
  for (const c of cases) {
    it(`exits 1 with one line on ${c.name}, before any event`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-startup-'));
      try {
        fs.writeFileSync(path.join(dir, 'ingest.yaml'), c.yaml);
        const result = spawnSync(
          process.execPath,
          [FRAMEWORK_MAIN, '--target=ingest', '--signature-type=http', `--source=${REPO_ROOT}`],
          {
            cwd: dir,
            env: { PATH: process.env.PATH, PORT: '0', METADATA_SERVER_DETECTION: 'none' },
            encoding: 'utf8',
            timeout: 30_000,
          },
        );
        expect(result.status).to.equal(1);
        expect(result.stderr.trim().split('\n')).to.have.length(1);
        expect(result.stderr.trim()).to.match(c.line);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
