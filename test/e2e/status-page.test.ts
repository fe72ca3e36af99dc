import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumOrSkip } from '../helpers/chromium';
import { Dev } from '../helpers/dev';
import { REPO_ROOT, freePort } from '../helpers/server';

/** Where the screenshot goes; TEST_OUTPUT_DIR names another folder. */
const OUTPUT = path.resolve(process.env.TEST_OUTPUT_DIR ?? path.join(REPO_ROOT, 'test-output'));
const HOSTILE = '<img src=x onerror=alert(1)>.csv';
// Markup made of characters BigQuery allows in a column name: injected, it would be an element.
const HOSTILE_COLUMN = "<img src=z onerror=alert class='c2'>";
const HOSTILE_VALUE = '<img src=y onerror=alert(3)>';

/** The text of every cell of the page's table `id`, row by row. */
async function cells(page: Page, id: string): Promise<string[][]> {
  const rows = await page.locator(`#${id} tbody tr`).all();
  return Promise.all(rows.map((row) => row.locator('td').allTextContents()));
}

/** Waits until the body of table `id` has a row showing each of `texts`. */
async function shows(page: Page, id: string, texts: string[], timeout?: number): Promise<void> {
  for (const text of texts)
    await page.locator(`#${id} tbody tr`, { hasText: text }).first().waitFor({ timeout });
}

describe('the status page in a browser (gcs-bq-ingest dev, headless Chromium)', function () {
  this.timeout(120_000);
  let executablePath: string;
  let dir: string;
  let dev: Dev | undefined;
  let browser: Browser | undefined;

  before(function () {
    executablePath = chromiumOrSkip(this);
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-status-'));
  });
  afterEach(async () => {
    await browser?.close();
    await dev?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows new outcomes without a reload, with tables, reasons, quarantined copies, a preview and every value escaped', async () => {
    const port = await freePort();
    dev = new Dev(dir, {
      LOCAL_DATA_DIR: path.join(dir, 'local-data'),
      PORT: String(port),
      INGEST_CONFIG: '',
    });
    const address = await dev.waitFor(/^status page: /);
    expect(address).to.equal(`status page: http://localhost:${port}/ (open it in a browser)`);
    await dev.waitFor(/^loaded\s+gs:\/\/demo\/us-states\.csv/);

    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    page.on('request', (request) => {
      if (!request.url().startsWith(`http://127.0.0.1:${port}/`)) failed.push(request.url());
    });
    let navigations = 0;
    page.on('framenavigated', () => (navigations += 1));

    await page.goto(`http://127.0.0.1:${port}/`);
    await shows(page, 'outcomes', ['gs://demo/us-states.csv']);
    expect(navigations).to.equal(1);

    const bucket = path.join(dir, 'local-data', 'buckets', 'drop');
    fs.mkdirSync(path.join(bucket, 'in'), { recursive: true });
    fs.writeFileSync(path.join(bucket, 'in', 'good.csv'), 'a,b\n1,2\n3,4\n');
    fs.writeFileSync(path.join(bucket, 'in', 'bad.csv'), 'a,b\n1,2,3\n');
    fs.writeFileSync(path.join(bucket, HOSTILE), `"${HOSTILE_COLUMN}",b\n"${HOSTILE_VALUE}",1\n`);
    for (const line of [
      /^loaded\s+gs:\/\/drop\/in\/good\.csv/,
      /^rejected\s+gs:\/\/drop\/in\/bad\.csv/,
      /^loaded\s+gs:\/\/drop\/<img src=x onerror=alert\(1\)>\.csv/,
    ]) {
      await dev.waitFor(line);
    }
    // Every outcome was answered by now: the page shows them within 2 s, by itself.
    const uris = ['gs://drop/in/good.csv', 'gs://drop/in/bad.csv', `gs://drop/${HOSTILE}`];
    const shownBy = Date.now() + 2000;
    await shows(page, 'outcomes', uris, 2000);
    await shows(page, 'tables', ['ingest.good'], Math.max(1, shownBy - Date.now()));
    expect(navigations, 'the page was not reloaded').to.equal(1);

    const outcomes = await cells(page, 'outcomes');
    const byUri = new Map(outcomes.map((row) => [row[1], row]));
    const good = byUri.get('gs://drop/in/good.csv');
    expect([good?.[2], good?.[4]]).to.deep.equal(['loaded', '2']);
    expect(good?.[3]).to.match(/^(test-project\.)?ingest\.good$/);
    expect(byUri.get(`gs://drop/${HOSTILE}`)?.[2]).to.equal('loaded');
    const bad = byUri.get('gs://drop/in/bad.csv');
    expect(bad?.[2]).to.equal('rejected');
    expect(bad?.[5]).to.match(/^ingest_[0-9a-f]{64}$/);
    expect(bad?.[6]).to.match(/Found: 3 \(line 2 of gs:\/\/drop\/in\/bad\.csv\)/);
    expect(outcomes[0]?.[1], 'newest first').not.to.equal('gs://demo/us-states.csv');
    expect(outcomes.at(-1)?.[1]).to.equal('gs://demo/us-states.csv');

    const tables = new Map((await cells(page, 'tables')).map((row) => [row[0], row]));
    expect([...tables.keys()]).to.include.members([
      'ingest.us_states',
      'ingest.good',
      'ingest._img_src_x_onerror_alert_1__',
    ]);
    expect(tables.get('ingest.us_states')?.[1]).to.equal('50');
    expect(tables.get('ingest.good')?.slice(1, 3)).to.deep.equal([
      '2',
      'a INT64 (BIGINT), b INT64 (BIGINT)',
    ]);
    expect(tables.get('ingest._img_src_x_onerror_alert_1__')?.[2]).to.include(HOSTILE_COLUMN);

    const rejected = await cells(page, 'rejected');
    expect(rejected).to.have.length(1);
    expect(rejected[0]?.slice(1)).to.deep.equal([
      'gs://drop/in/bad.csv',
      bad?.[6],
      path.join('local-data', 'buckets', 'drop', '_quarantine', 'in', 'bad.csv'),
    ]);
    expect(fs.readFileSync(path.join(dir, rejected[0]![3]!), 'utf8')).to.equal('a,b\n1,2,3\n');

    await page
      .locator('#tables tr', { hasText: 'ingest._img_src_x_onerror_alert_1__' })
      .getByRole('button')
      .click();
    await page.locator('#preview-rows tbody tr').first().waitFor();
    expect(await page.locator('#preview-rows th').allTextContents()).to.deep.equal([
      HOSTILE_COLUMN,
      'b',
    ]);
    expect(await cells(page, 'preview-rows')).to.deep.equal([[HOSTILE_VALUE, '1']]);

    // Names, columns and values that look like HTML stayed text: nothing was injected or ran.
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a poll more, after the preview
    expect(dialogs).to.deep.equal([]);
    expect(await page.locator('img').count()).to.equal(0);
    expect(await page.locator('script').count()).to.equal(1);
    expect(await page.getByText(`gs://drop/${HOSTILE}`, { exact: true }).count()).to.be.at.least(1);
    expect(failed, 'every request went to the receiver and succeeded').to.deep.equal([]);

    // A table of 2,000 columns keeps its row short: past the first columns they fold away.
    const wide = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(',');
    fs.writeFileSync(path.join(bucket, 'in', 'wide.csv'), `${wide(2000)}\n${'1,'.repeat(1999)}1\n`);
    await dev.waitFor(/^loaded\s+gs:\/\/drop\/in\/wide\.csv/);
    fs.mkdirSync(path.join(bucket, 'more'));
    fs.writeFileSync(
      path.join(bucket, 'more', 'wide.csv'),
      `${wide(2001)}\n${'1,'.repeat(2000)}x\n`,
    );
    const grown = await dev.waitFor(/^loaded\s+gs:\/\/drop\/more\/wide\.csv/);
    expect(grown, 'the dev line').to.match(/ schema: added column c2000 STRING$/);
    await shows(page, 'outcomes', ['schema: added column c2000 STRING']);
    const wideRow = page.locator('#tables tbody tr', { hasText: 'ingest.wide' });
    await wideRow.waitFor();
    // The page re-renders its tables on every poll: a row caught between two renders has no box.
    let folded = Infinity;
    for (let tries = 0; tries < 50 && folded === Infinity; tries++) {
      const box = await wideRow.boundingBox().catch(() => null);
      if (box) folded = box.height;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(folded, 'the row of a 2,000-column table, folded').to.be.below(120);
    expect(await wideRow.locator('td').nth(2).textContent()).to.match(
      /^c0 INT64 \(BIGINT\), c1 INT64 \(BIGINT\), .*c7 INT64 \(BIGINT\)1,993 more columns/,
    );
    await wideRow.locator('summary').click();
    await wideRow.getByText('c2000 STRING (VARCHAR)').waitFor();

    fs.mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, 'status-page.png'), fullPage: true });
  });
});
