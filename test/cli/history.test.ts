import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatHistory } from '../../src/cli/history';
import type { HistoryEntry } from '../../src/history/entry';
import type { StoredObject } from '../../src/stores/store';
import { insertLoad, insertRejection } from '../../src/warehouses/duckdb/ledger';
import { closeSession, openSession } from '../../src/warehouses/duckdb/session';
import { contractJob } from '../contract/warehouse-contract';
import { holdLock } from '../helpers/duckdb';
import { runCli } from '../helpers/cli';

const object = (name: string): StoredObject => ({ bucket: 'demo', name, generation: '1', size: 1 });

describe('gcs-bq-ingest history (local backend)', function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;

  const run = (args: string[]) =>
    runCli(['history', ...args], dir, {
      LOCAL_DATA_DIR: path.join(dir, 'data'),
      INGEST_CONFIG: '',
    });
  const json = async (args: string[]) => {
    const result = await run([...args, '--json']);
    expect(result.status, result.stderr).to.equal(0);
    return JSON.parse(result.stdout) as HistoryEntry[];
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-history-'));
    file = path.join(dir, 'data', 'warehouse.duckdb');
    const session = await openSession(file, 1000, false);
    try {
      const c = session.connection;
      const coalesced = contractJob([object('a.csv'), object('b.csv')], { jobId: 'job_ab' });
      await insertLoad(c, coalesced, 7);
      await insertLoad(c, contractJob([object('old.csv')], { jobId: 'job_old' }), 3);
      await c.run(
        "UPDATE _ingest.loads SET loaded_at = now() - INTERVAL 3 DAY WHERE job_id = 'job_old'",
      );
      const other = contractJob([object('bad.csv')], {
        jobId: 'job_bad',
        destination: { dataset: 'sales', table: 'daily', partition: '20260101' },
      });
      await insertRejection(c, other, 'Expected 2 columns, found 3 (line 2)');
    } finally {
      closeSession(session);
    }
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists the last 24 hours of loads and rejections, newest first, one line per job', async () => {
    const result = await run([]);
    expect(result.status, result.stderr).to.equal(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(
      /^time\s+object\(s\)\s+outcome\s+destination\s+rows\s+job id\s+reason$/,
    );
    expect(lines).to.have.length(3);
    expect(lines[1]).to.match(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+gs:\/\/demo\/bad\.csv\s+rejected\s+sales\.daily\$20260101\s+job_bad\s+Expected 2 columns, found 3 \(line 2\)$/,
    );
    expect(lines[2]).to.match(
      /gs:\/\/demo\/a\.csv \+1 more\s+loaded\s+contract\.items\s+7\s+job_ab$/,
    );
  });

  it('prints every object of a job with --json, and filters by age, table and outcome', async () => {
    const all = await json([]);
    expect(all.map((e) => [e.jobId, e.outcome, e.objects, e.rows])).to.deep.equal([
      ['job_bad', 'rejected', ['gs://demo/bad.csv'], undefined],
      ['job_ab', 'loaded', ['gs://demo/a.csv', 'gs://demo/b.csv'], 7],
    ]);
    expect(Date.now() - Date.parse(all[1]!.time)).to.be.within(0, 60_000);
    expect((await json(['--since', '7d'])).map((e) => e.jobId)).to.deep.equal([
      'job_bad',
      'job_ab',
      'job_old',
    ]);
    expect((await json(['--since', '7d', '--table', 'items'])).map((e) => e.jobId)).to.deep.equal([
      'job_ab',
      'job_old',
    ]);
    expect((await json(['--table', 'sales.daily'])).map((e) => e.jobId)).to.deep.equal(['job_bad']);
    expect((await json(['--outcome', 'loaded'])).map((e) => e.jobId)).to.deep.equal(['job_ab']);
    expect(await json(['--outcome', 'failed'])).to.deep.equal([]);
  });

  it('reads the file while the receiver holds it, waiting for it to let go', async () => {
    const holder = await holdLock(file, 700);
    const result = await run(['--outcome', 'rejected']);
    await holder.exited;
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.include('job_bad');
  });

  it('says so when there is nothing, and creates no warehouse file', async () => {
    fs.rmSync(file);
    const result = await run(['--since', '30m']);
    expect([result.status, result.stdout]).to.deep.equal([0, 'nothing in the last 30m\n']);
    expect(fs.existsSync(file)).to.equal(false);
  });

  const bad: [string[], RegExp][] = [
    [
      ['--since', '24'],
      /--since <duration>' argument '24' is invalid\. a duration like 30m, 24h or 7d/,
    ],
    [['--since', 'yesterday'], /argument 'yesterday' is invalid/],
    [['--outcome', 'skipped'], /one of loaded, rejected, failed, running \(skipped and duplicate/],
  ];
  for (const [args, error] of bad) {
    it(`refuses ${args.join(' ')} with one line and exit code 1`, async () => {
      const result = await run(args);
      expect(result.status).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(result.stderr).to.match(error);
    });
  }

  it('formats a table whose last column is not padded', () => {
    const text = formatHistory(
      [
        {
          time: '2026-01-02T03:04:05.678Z',
          objects: [],
          outcome: 'running',
          destination: 'p.d.t',
          jobId: 'j',
        },
      ],
      86_400_000,
    );
    expect(text.split('\n')[1]).to.equal(
      '2026-01-02T03:04:05Z  -          running  p.d.t              j',
    );
    expect(formatHistory([], 7 * 86_400_000)).to.equal('nothing in the last 7d');
  });

  it('shortens a job id ending in a 64-hex hash in the table', () => {
    const jobId = `ingest_4ca1${'0123456789abcdef'.repeat(3)}abcdef012345`;
    const entry = { time: '2026-01-02T03:04:05Z', objects: ['gs://b/a.csv'], outcome: 'loaded' };
    const line = formatHistory([{ ...entry, jobId } as HistoryEntry], 86_400_000).split('\n')[1];
    expect(line).to.match(/  ingest_4ca1…$/);
    expect(line).not.to.include(jobId);
  });

  it('shortens the hash and the message id of a forced load in the table', () => {
    const hash = '0123456789abcdef'.repeat(4);
    const jobId = `ingest_${hash}_r410dba85-1ff3-4817-8abd-06b685dc1dc2_03e6137d`;
    const entry = { time: '2026-01-02T03:04:05Z', objects: ['gs://b/a.csv'], outcome: 'loaded' };
    const line = formatHistory([{ ...entry, jobId } as HistoryEntry], 86_400_000).split('\n')[1];
    expect(line).to.match(/  ingest_0123…_r410d…_03e6137d$/);
  });
});
