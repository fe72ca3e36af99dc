import * as fs from 'node:fs';

// Preloaded with `node --require` by the cold-start benchmark: when the process exits, writes the
// modules it loaded to BENCH_MODULES_FILE, to check that each backend loads only its own clients.
const file = process.env.BENCH_MODULES_FILE;
if (file) {
  process.on('exit', () => fs.writeFileSync(file, JSON.stringify(Object.keys(require.cache))));
}
