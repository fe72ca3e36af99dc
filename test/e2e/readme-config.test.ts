import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import { createLocalStore } from '../../src/stores/local';
import { queryDuckDb } from '../helpers/duckdb';
import { REPO_ROOT, startReceiver, type RunningServer } from '../helpers/server';

/** The README's example `ingest.yaml`, exactly as a reader would copy it. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### `ingest.yaml`'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README.md: no yaml block under "### `ingest.yaml`"');
  return block;
}

describe("the README's example ingest.yaml, saved in the repository's root", function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningServer;
  const data = () => path.join(dir, 'local-data');

  async function drop(bucket: string, name: string, content: Buffer | string) {
    const file = path.join(data(), 'buckets', bucket, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    const object = await createLocalStore(data()).stat(bucket, name);
    if (!object) throw new Error(`${file} was not written`);
    const answer = await sendEvent(server.url, finalizedEvent(object));
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    return (answer.body as { objects: Record<string, unknown>[] }).objects[0];
  }

  before(async () => {
    // A copy of the repository's root as far as the example needs it: ingest.yaml and schemas/.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-readme-'));
    fs.writeFileSync(path.join(dir, 'ingest.yaml'), readmeExample());
    fs.cpSync(path.join(REPO_ROOT, 'schemas'), path.join(dir, 'schemas'), { recursive: true });
    server = await startReceiver({ LOCAL_DATA_DIR: data() }, dir);
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the fixture into its day of sales.orders, as the README says', async () => {
    const orders = fs.readFileSync(path.join(REPO_ROOT, 'fixtures', 'sales-orders.csv'));
    const result = await drop('landing', 'sales/orders/2026/11/28/orders.csv', orders);
    expect(result).to.include({
      outcome: 'loaded',
      rows: 3,
      destination: 'my-project.sales.orders',
    });
    const rows = await queryDuckDb(
      path.join(data(), 'warehouse.duckdb'),
      `SELECT count(*) AS n FROM sales.orders WHERE _PARTITIONDATE = DATE '2026-11-28'`,
    );
    expect(Number(rows[0]?.n)).to.equal(3);
  });

  it('loads .csv.gz through its catch-all routes', async () => {
    const result = await drop('landing', 'exports/daily.csv.gz', zlib.gzipSync('a,b\n1,2\n'));
    expect(result).to.include({ outcome: 'loaded', rows: 1 });
  });

  it('skips the demo bucket, which its allowlist leaves out', async () => {
    const result = await drop('demo', 'us-states.csv', 'a\n1\n');
    expect(result).to.include({
      outcome: 'skipped',
      reason: 'bucket demo is not in the allowlist',
    });
  });
});
