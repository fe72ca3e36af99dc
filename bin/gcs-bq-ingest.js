#!/usr/bin/env node
'use strict';
// The `gcs-bq-ingest` command. It is committed, not built, so that `npm ci` (and npx, which links a
// package's commands once, when it first meets it) finds it before the first build; when dist/ is
// missing, as in a fresh clone before `npm start`, it builds once and goes on.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const main = path.join(root, 'dist', 'src', 'cli', 'main.js');

if (!fs.existsSync(main)) {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  } catch {
    process.stderr.write(
      `gcs-bq-ingest: ${path.relative(process.cwd(), main)} is not built and TypeScript is not installed: run \`npm ci\`, then \`npm run build\`\n`,
    );
    process.exit(1);
  }
  process.stderr.write('gcs-bq-ingest: building it first (npm run build)\n');
  const build = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], {
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
require(main);
