import { expect } from 'chai';
import { loadConfig, type Config } from '../src/config';
import { jobIdFor, routeObject, tableFromFileName, type Routing } from '../src/objects/routing';

const YAML = `
project: my-project
buckets: [landing, other]
routes:
  - match: "sales/{table}/{yyyy}/{mm}/{dd}/*.csv"
    dataset: sales
    table: "{table}"
    write: partition
  - match: "{dataset}/snapshot/*.csv"
    dataset: "{dataset}"
    write: truncate
  - match: "**/*.csv"
  - match: "**/*.csv.gz"
`;
const config: Config = loadConfig({}, (file) => {
  if (file === 'ingest.yaml') return YAML;
  throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
});
const defaults: Config = loadConfig({}, () => {
  throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
});
const salesOnly: Config = { ...config, routes: config.routes.slice(0, 1) };

describe('routeObject', () => {
  const cases: {
    name: string;
    config?: Config;
    bucket?: string;
    expected: Partial<Routing> & Record<string, unknown>;
  }[] = [
    {
      name: 'in/us-states.csv.gz',
      config: defaults,
      expected: { kind: 'route', destination: { dataset: 'ingest', table: 'us_states' } },
    },
    {
      name: 'Deep/Path/My File-2026.CSV',
      config: defaults,
      expected: { kind: 'route', destination: { dataset: 'ingest', table: 'my_file_2026' } },
    },
    {
      name: 'Orders.CSV',
      config: defaults,
      expected: { kind: 'route', destination: { dataset: 'ingest', table: 'orders' } },
    },
    {
      name: 'in/Orders.Csv.GZ',
      config: defaults,
      expected: { kind: 'route', destination: { dataset: 'ingest', table: 'orders' } },
    },
    {
      name: 'sales/orders/2026/11/28/PART-1.CSV',
      expected: {
        kind: 'route',
        destination: {
          project: 'my-project',
          dataset: 'sales',
          table: 'orders',
          partition: '20261128',
        },
      },
    },
    {
      name: 'Sales/orders/2026/11/28/part-1.csv',
      config: salesOnly,
      expected: { kind: 'skip', reason: 'no route matches' },
    },
    {
      name: 'a/b/My File-2026.csv',
      config: defaults,
      expected: { kind: 'route', destination: { dataset: 'ingest', table: 'my_file_2026' } },
    },
    {
      name: 'sales/orders/2026/11/28/part-1.csv',
      expected: {
        kind: 'route',
        destination: {
          project: 'my-project',
          dataset: 'sales',
          table: 'orders',
          partition: '20261128',
        },
      },
    },
    {
      name: 'sales/orders/2026/02/30/part-1.csv',
      expected: {
        kind: 'reject',
        reason:
          'partition "20260230" from route "sales/{table}/{yyyy}/{mm}/{dd}/*.csv" is not a date (YYYYMMDD)',
      },
    },
    { name: 'sales/or;ders/2026/11/28/x.csv', expected: { kind: 'reject' } },
    { name: 'sales/or`ders/2026/11/28/x.csv', expected: { kind: 'reject' } },
    { name: 'sales/orders.x/2026/11/28/x.csv', expected: { kind: 'reject' } },
    { name: 'sales/оrders/2026/11/28/x.csv', expected: { kind: 'reject' } }, // Cyrillic о
    {
      name: 'finance/snapshot/accounts.csv',
      expected: {
        kind: 'route',
        destination: { project: 'my-project', dataset: 'finance', table: 'accounts' },
      },
    },
    { name: 'fin-ance/snapshot/accounts.csv', expected: { kind: 'reject' } },
    { name: 'notes.txt', expected: { kind: 'skip', reason: 'not a CSV (.csv or .csv.gz)' } },
    { name: 'folder/', expected: { kind: 'skip', reason: 'a folder placeholder' } },
    {
      name: '_quarantine/a.csv',
      expected: { kind: 'skip', reason: 'under the quarantine prefix _quarantine/' },
    },
    {
      name: 'a.csv',
      bucket: 'elsewhere',
      expected: { kind: 'skip', reason: 'bucket elsewhere is not in the allowlist' },
    },
    {
      name: 'top.csv',
      expected: {
        kind: 'route',
        destination: { project: 'my-project', dataset: 'ingest', table: 'top' },
      },
    },
  ];
  for (const c of cases) {
    it(`${c.bucket ?? 'landing'}/${c.name} -> ${c.expected.kind}`, () => {
      const routing = routeObject(
        { bucket: c.bucket ?? 'landing', name: c.name },
        c.config ?? config,
      );
      expect(routing).to.deep.include(c.expected);
      if (routing.kind === 'reject')
        expect(routing.reason).to.match(/is not a valid BigQuery|is not a date/);
    });
  }
});

describe('tableFromFileName', () => {
  const cases = [
    ['in/us-states.csv.gz', 'us_states'],
    ['US States.csv', 'us_states'],
    ['a/b/c.d.csv', 'c_d'],
  ];
  for (const [name, table] of cases)
    it(`${name} -> ${table}`, () => expect(tableFromFileName(name as string)).to.equal(table));
});

describe('jobIdFor', () => {
  const source = { bucket: 'landing', name: 'a.csv', generation: '1' };
  const destination = { project: 'p', dataset: 'd', table: 't' };
  const id = jobIdFor([source], destination, 'append');

  it('is ingest_ + 64 hex characters, a valid BigQuery job id', () => {
    expect(id).to.match(/^ingest_[0-9a-f]{64}$/);
  });
  it('is the same for the same inputs', () => {
    expect(jobIdFor([{ ...source }], { ...destination }, 'append')).to.equal(id);
  });
  const changes: [string, string][] = [
    ['bucket', jobIdFor([{ ...source, bucket: 'other' }], destination, 'append')],
    ['name', jobIdFor([{ ...source, name: 'b.csv' }], destination, 'append')],
    ['generation', jobIdFor([{ ...source, generation: '2' }], destination, 'append')],
    ['destination', jobIdFor([source], { ...destination, table: 'u' }, 'append')],
    ['partition', jobIdFor([source], { ...destination, partition: '20260101' }, 'append')],
    ['write mode', jobIdFor([source], destination, 'truncate')],
  ];
  for (const [what, other] of changes)
    it(`changes with the ${what}`, () => expect(other).not.to.equal(id));
  it('appends _r<messageId> for a forced reprocess', () => {
    expect(jobIdFor([source], destination, 'append', '123')).to.equal(`${id}_r123`);
  });
  it('does not depend on the order of a batch', () => {
    const other = { bucket: 'landing', name: 'b.csv', generation: '3' };
    expect(jobIdFor([source, other], destination, 'truncate')).to.equal(
      jobIdFor([other, source], destination, 'truncate'),
    );
  });
});
