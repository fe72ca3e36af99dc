import { expect } from 'chai';
import * as path from 'node:path';
import { DEFAULT_CSV, loadConfig, type Env } from '../src/config';
import { ConfigError } from '../src/errors';

function files(map: Record<string, string>) {
  return (file: string): string => {
    const key = path.isAbsolute(file) ? path.relative(process.cwd(), file) : file;
    const text = map[file] ?? map[key];
    if (text === undefined)
      throw Object.assign(new Error(`ENOENT: no such file, open '${file}'`), { code: 'ENOENT' });
    return text;
  };
}

const SALES_SCHEMA = JSON.stringify([
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'amount', type: 'NUMERIC' },
]);

describe('loadConfig', () => {
  it('uses built-in defaults when there is no ingest.yaml', () => {
    const config = loadConfig({}, files({}));
    expect(config.source).to.equal('built-in defaults');
    expect(config.backend).to.equal('local');
    expect(config.localDataDir).to.equal('./local-data');
    expect(config.routes.map((r) => r.match)).to.deep.equal(['**/*.csv', '**/*.csv.gz']);
    expect(config.routes[0]).to.include({ dataset: 'ingest', write: 'append', schema: 'auto' });
    expect(config.routes[0]?.csv).to.deep.equal(DEFAULT_CSV);
    expect(config.reprocess).to.deep.equal({ topic: undefined, inlineLimit: 100 });
    expect(config.quarantinePrefix).to.equal('_quarantine/');
    expect(config.waitSeconds).to.equal(540);
  });

  it('reads ./ingest.yaml, merges defaults into routes and loads schema files', () => {
    const yaml = `
project: my-project
location: EU
buckets: [landing]
defaults:
  dataset: raw
  csv: {delimiter: ";", maxBadRecords: 5}
reprocess: {topic: projects/my-project/topics/ingest-reprocess, inlineLimit: 50}
routes:
  - match: "sales/{table}/{yyyy}/{mm}/{dd}/*.csv"
    dataset: sales
    table: "{table}"
    write: partition
    schema: schemas/sales.json
    csv: {skipLeadingRows: 2}
  - match: "**/*.csv"
`;
    const config = loadConfig(
      {},
      files({ 'ingest.yaml': yaml, 'schemas/sales.json': SALES_SCHEMA }),
    );
    expect(config).to.include({ source: 'ingest.yaml', project: 'my-project', location: 'EU' });
    expect(config.buckets).to.deep.equal(['landing']);
    expect(config.reprocess).to.deep.equal({
      topic: 'projects/my-project/topics/ingest-reprocess',
      inlineLimit: 50,
    });
    const [sales, rest] = config.routes;
    expect(sales).to.include({
      dataset: 'sales',
      table: '{table}',
      write: 'partition',
      partition: '{yyyy}{mm}{dd}',
    });
    expect(sales?.schema).to.deep.equal(JSON.parse(SALES_SCHEMA));
    expect(sales?.csv).to.include({ delimiter: ';', maxBadRecords: 5, skipLeadingRows: 2 });
    expect(rest).to.include({ dataset: 'raw', schema: 'auto', write: 'append' });
  });

  it('takes the project from GOOGLE_CLOUD_PROJECT when the file names none', () => {
    expect(loadConfig({ GOOGLE_CLOUD_PROJECT: 'env-project' }, files({})).project).to.equal(
      'env-project',
    );
  });

  it('accepts a schema file wrapped in {"fields": [...]}', () => {
    const yaml = 'routes: [{match: "*.csv", schema: s.json}]';
    const config = loadConfig(
      {},
      files({
        'ingest.yaml': yaml,
        's.json': JSON.stringify({ fields: JSON.parse(SALES_SCHEMA) }),
      }),
    );
    expect(config.routes[0]?.schema).to.have.length(2);
  });

  const invalid: { name: string; env?: Env; files: Record<string, string>; error: string }[] = [
    {
      name: 'an INGEST_CONFIG that does not exist',
      env: { INGEST_CONFIG: 'missing.yaml' },
      files: {},
      error: 'missing.yaml: (file): cannot be read: ENOENT',
    },
    { name: 'broken YAML', files: { 'ingest.yaml': 'routes: [' }, error: 'ingest.yaml: (yaml): ' },
    {
      name: 'an unknown top-level field',
      files: { 'ingest.yaml': 'rutes: []' },
      error: 'ingest.yaml: (root): unknown field "rutes"',
    },
    {
      name: 'an unknown write mode',
      files: { 'ingest.yaml': 'routes: [{match: "*.csv", write: upsert}]' },
      error: 'ingest.yaml: routes[0].write: ',
    },
    {
      name: 'a route without match',
      files: { 'ingest.yaml': 'routes: [{dataset: x}]' },
      error: 'ingest.yaml: routes[0].match: ',
    },
    {
      name: 'an unknown csv option',
      files: { 'ingest.yaml': 'defaults: {csv: {delim: ";"}}' },
      error: 'ingest.yaml: defaults.csv: unknown field "delim"',
    },
    {
      name: 'a two-character delimiter',
      files: { 'ingest.yaml': 'defaults: {csv: {delimiter: ";;"}}' },
      error: 'ingest.yaml: defaults.csv.delimiter: must be a single character',
    },
    {
      name: 'negative maxBadRecords',
      files: { 'ingest.yaml': 'routes: [{match: "*.csv", csv: {maxBadRecords: -1}}]' },
      error: 'ingest.yaml: routes[0].csv.maxBadRecords: ',
    },
    {
      name: 'a bad topic',
      files: { 'ingest.yaml': 'reprocess: {topic: ingest-reprocess}' },
      error: 'ingest.yaml: reprocess.topic: must look like projects/P/topics/T',
    },
    {
      name: 'a bad bucket in the allowlist',
      files: { 'ingest.yaml': 'buckets: ["Not A Bucket"]' },
      error: 'ingest.yaml: buckets[0]: is not a valid bucket name',
    },
    {
      name: 'a placeholder the match does not capture',
      files: { 'ingest.yaml': 'routes: [{match: "a/*.csv", table: "{table}"}]' },
      error: 'ingest.yaml: routes[0].table: uses {table}, which match "a/*.csv" does not capture',
    },
    {
      name: 'a partition route without date placeholders',
      files: { 'ingest.yaml': 'routes: [{match: "a/*.csv", write: partition}]' },
      error: 'ingest.yaml: routes[0].partition: uses {yyyy}',
    },
    {
      name: 'a match with ** inside a segment',
      files: { 'ingest.yaml': 'routes: [{match: "a**/x.csv"}]' },
      error: 'ingest.yaml: routes[0].match: uses "**" inside a segment',
    },
    {
      name: 'a missing schema file',
      files: { 'ingest.yaml': 'routes: [{match: "*.csv", schema: none.json}]' },
      error: 'ingest.yaml: routes[0].schema: schema file none.json cannot be used: ENOENT',
    },
    {
      name: 'a schema with an unknown type',
      files: {
        'ingest.yaml': 'defaults: {schema: s.json}',
        's.json': '[{"name": "a", "type": "VARCHAR"}]',
      },
      error: 'ingest.yaml: defaults.schema: schema file s.json[0].type: ',
    },
    {
      name: 'a schema with duplicate columns',
      files: {
        'ingest.yaml': 'defaults: {schema: s.json}',
        's.json': '[{"name": "a", "type": "STRING"}, {"name": "A", "type": "STRING"}]',
      },
      error: 'has duplicate column names',
    },
    {
      name: 'an unknown backend',
      env: { INGEST_BACKEND: 'aws' },
      files: {},
      error: 'environment: INGEST_BACKEND: ',
    },
    {
      name: 'a non-numeric wait',
      env: { INGEST_WAIT_SECONDS: 'soon' },
      files: {},
      error: 'environment: INGEST_WAIT_SECONDS: ',
    },
  ];
  for (const c of invalid) {
    it(`stops on ${c.name}, naming file, field and problem in one line`, () => {
      let caught: unknown;
      try {
        loadConfig(c.env ?? {}, files(c.files));
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(ConfigError);
      const message = (caught as Error).message;
      expect(message).to.include(c.error);
      expect(message).not.to.include('\n');
    });
  }
});
