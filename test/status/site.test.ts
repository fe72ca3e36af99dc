import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Pages } from '../../src/receiver/app';
import type { Backend } from '../../src/receiver/backend';
import { loadConfig } from '../../src/config';
import type { HistoryEntry } from '../../src/history/entry';
import { createStatusSite } from '../../src/status/site';
import { createLocalStore } from '../../src/stores/local';
import type { WarehouseInspector } from '../../src/warehouses/inspector';
import { startReceiver, type RunningServer } from '../helpers/server';

/** Serves `pages`, answering 418 for whatever they leave. */
async function serve(pages: Pages): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    void pages.serve(req, res).then((served) => {
      if (!served) res.writeHead(418).end('not a page');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('the status page site', () => {
  let dir: string;
  let site: { url: string; close(): Promise<void> };
  let pages: Pages;
  let historyCalls: number;
  let failing: boolean;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-site-'));
    historyCalls = 0;
    failing = false;
    const earlier: HistoryEntry = {
      time: '2026-01-01T00:00:00.000Z',
      objects: ['gs://demo/old.csv'],
      outcome: 'loaded',
      destination: 'ingest.old',
      rows: 5,
      jobId: 'j0',
    };
    const ledgerRejection: HistoryEntry = {
      time: '2025-06-01T00:00:00.000Z',
      objects: ['gs://demo/long-ago.csv'],
      outcome: 'rejected',
      reason: 'header does not match',
    };
    const inspector: WarehouseInspector = {
      tables: async () => {
        if (failing) throw new Error('DuckDB file is locked');
        return [
          {
            table: 'ingest.old',
            rows: 5,
            columns: [{ name: 'a', type: 'BIGINT', bigQueryType: 'INT64' }],
          },
        ];
      },
      preview: async (table) =>
        table === 'ingest.old' ? { table, columns: ['a'], rows: [['1'], [null]] } : undefined,
      history: async (_since, _limit, rejectedOnly) => {
        if (rejectedOnly) return [ledgerRejection];
        historyCalls += 1;
        return [earlier];
      },
    };
    const config = loadConfig({ LOCAL_DATA_DIR: path.join(dir, 'data'), INGEST_CONFIG: '' }, () => {
      throw Object.assign(new Error('no file'), { code: 'ENOENT' });
    });
    pages = createStatusSite({
      config,
      backend: async () =>
        ({ inspector, store: createLocalStore(path.join(dir, 'data')) }) as Backend,
      cwd: dir,
    });
    site = await serve(pages);
  });
  afterEach(async () => {
    await site.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page for GET / asking for HTML, with a nonce policy and no data in it', async () => {
    const answer = await fetch(`${site.url}/`, { headers: { accept: 'text/html,*/*;q=0.8' } });
    expect(answer.status).to.equal(200);
    expect(answer.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    const policy = answer.headers.get('content-security-policy') ?? '';
    const nonce = /script-src 'nonce-([^']+)'/.exec(policy)?.[1];
    expect(policy).to.include("default-src 'none'").and.include("connect-src 'self'");
    const html = await answer.text();
    expect(html).to.include(`<script nonce="${nonce}">`);
    expect(html).not.to.match(/https?:\/\/|innerHTML|insertAdjacentHTML|document\.write/);
    const again = await fetch(`${site.url}/`, { headers: { accept: 'text/html' } });
    expect(again.headers.get('content-security-policy')).not.to.include(nonce);
  });

  const leftAlone: [string, RequestInit][] = [
    ['/', { headers: { accept: 'application/json' } }],
    ['/', { method: 'POST', headers: { accept: 'text/html' }, body: '{}' }],
    ['/health', { headers: { accept: 'text/html' } }],
    ['/status/other', {}],
  ];
  for (const [where, init] of leftAlone) {
    it(`leaves ${init.method ?? 'GET'} ${where} (${JSON.stringify(init.headers ?? {})}) to the receiver`, async () => {
      expect((await fetch(`${site.url}${where}`, init)).status).to.equal(418);
    });
  }

  it('lists outcomes newest first over what the ledger had, and where each rejected copy is', async () => {
    const copy = path.join(dir, 'data', 'buckets', 'demo', '_quarantine', 'in', 'bad.csv');
    fs.mkdirSync(path.dirname(copy), { recursive: true });
    fs.writeFileSync(copy, 'a\n"');
    pages.record({
      outcome: 'partial',
      objects: [
        { uri: 'gs://demo/in/bad.csv', outcome: 'rejected', reason: 'bad quote' },
        { uri: 'gs://demo/gone.csv', outcome: 'rejected', reason: 'header (not quarantined)' },
        { uri: 'gs://demo/readme.txt', outcome: 'skipped', reason: 'not a CSV' },
        { uri: 'gs://demo/../x.csv', outcome: 'rejected', reason: 'outside its bucket' },
      ],
    });
    const body = (await (await fetch(`${site.url}/status/outcomes`)).json()) as {
      version: string;
      outcomes: { uri: string; outcome: string }[];
      rejected: { uri: string; quarantined?: string }[];
    };
    expect(body.outcomes.map((o) => o.uri)).to.deep.equal([
      'gs://demo/in/bad.csv',
      'gs://demo/gone.csv',
      'gs://demo/readme.txt',
      'gs://demo/../x.csv',
      'gs://demo/old.csv',
    ]);
    expect(body.rejected.map((r) => [r.uri, r.quarantined])).to.deep.equal([
      [
        'gs://demo/in/bad.csv',
        path.join('data', 'buckets', 'demo', '_quarantine', 'in', 'bad.csv'),
      ],
      ['gs://demo/gone.csv', undefined],
      ['gs://demo/../x.csv', undefined],
      ['gs://demo/long-ago.csv', undefined],
    ]);
    const next = (await (await fetch(`${site.url}/status/outcomes`)).json()) as typeof body;
    expect(next.version).to.equal(body.version);
    expect(historyCalls).to.equal(1);
    pages.record({ outcome: 'skipped', objects: [{ uri: 'gs://demo/x', outcome: 'skipped' }] });
    const changed = (await (await fetch(`${site.url}/status/outcomes`)).json()) as typeof body;
    expect(changed.version).not.to.equal(body.version);
  });

  it('lists rejected objects from the ledger and the quarantine after 100 other outcomes', async () => {
    const copy = path.join(dir, 'data', 'buckets', 'demo', '_quarantine', 'in', 'copied.csv');
    fs.mkdirSync(path.dirname(copy), { recursive: true });
    fs.writeFileSync(copy, 'a\n"');
    const metadata = { 'ingest-source': 'gs://demo/in/copied.csv', 'ingest-reason': 'bad quote' };
    fs.writeFileSync(`${copy}.metadata.json`, JSON.stringify(metadata));
    for (let i = 0; i < 150; i++)
      pages.record({
        outcome: 'loaded',
        objects: [{ uri: `gs://demo/${i}.csv`, outcome: 'loaded' }],
      });
    const body = (await (await fetch(`${site.url}/status/outcomes`)).json()) as {
      outcomes: { outcome: string }[];
      rejected: { uri: string; reason?: string; quarantined?: string }[];
    };
    expect(body.outcomes.filter((o) => o.outcome === 'rejected')).to.deep.equal([]);
    expect(
      body.rejected.map(({ uri, reason, quarantined }) => [uri, reason, quarantined]),
    ).to.deep.equal([
      [
        'gs://demo/in/copied.csv',
        'bad quote',
        path.join('data', 'buckets', 'demo', '_quarantine', 'in', 'copied.csv'),
      ],
      ['gs://demo/long-ago.csv', 'header does not match', undefined],
    ]);
  });

  it('previews a table it knows, 404 for one it does not, 503 while the warehouse cannot be read', async () => {
    const preview = await fetch(`${site.url}/status/preview?table=ingest.old`);
    expect(await preview.json()).to.deep.equal({
      table: 'ingest.old',
      columns: ['a'],
      rows: [['1'], [null]],
    });
    const missing = await fetch(`${site.url}/status/preview?table=${encodeURIComponent('x";--')}`);
    expect([missing.status, await missing.json()]).to.deep.equal([
      404,
      { error: 'table x";--: not found' },
    ]);
    failing = true;
    const busy = await fetch(`${site.url}/status/tables`);
    expect([busy.status, await busy.json()]).to.deep.equal([
      503,
      { error: 'DuckDB file is locked', retryable: true },
    ]);
  });
});

describe('GET / on the receiver', function () {
  this.timeout(60_000);
  let dir: string;
  let receiver: RunningServer | undefined;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-get-'));
  });
  afterEach(async () => receiver?.stop());
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

  it('with the gcp backend, stays a JSON answer even when HTML is asked for', async () => {
    receiver = await startReceiver({ INGEST_BACKEND: 'gcp', INGEST_CONFIG: '', HOME: dir });
    for (const where of ['', 'status/outcomes']) {
      const answer = await fetch(`${receiver.url}${where}`, { headers: html });
      expect(answer.headers.get('content-type')).to.match(/^application\/json/);
      expect(answer.status).to.equal(where === '' ? 400 : 404);
    }
  });

  it('with the local backend, serves the page to a browser and JSON to everyone else', async () => {
    receiver = await startReceiver({
      INGEST_BACKEND: 'local',
      INGEST_CONFIG: '',
      LOCAL_DATA_DIR: path.join(dir, 'data'),
    });
    const page = await fetch(receiver.url, { headers: html });
    expect([page.status, page.headers.get('content-type')]).to.deep.equal([
      200,
      'text/html; charset=utf-8',
    ]);
    const json = await fetch(receiver.url);
    expect([json.status, await json.json()]).to.deep.equal([
      400,
      { error: 'method GET: events are sent with POST' },
    ]);
    const tables = await fetch(`${receiver.url}status/tables`);
    expect([tables.status, await tables.json()]).to.deep.equal([200, []]);
  });
});
