import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_CSV, loadConfig, type Env } from '../src/config';
import { ConfigError } from '../src/core/errors';

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

  it('loads the YAML parser only when there is a configuration file to parse', () => {
    const config = path.join(__dirname, '..', 'src', 'config', 'index.js');
    const loadsYaml = (text: string | null) =>
      execFileSync(process.execPath, [
        '-e',
        `const { loadConfig } = require(${JSON.stringify(config)});
         const text = ${JSON.stringify(text)};
         loadConfig({}, () => {
           if (text === null) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
           return text;
         });
         const yaml = Object.keys(require.cache).some((m) => m.includes('/node_modules/yaml/'));
         process.stdout.write(String(yaml));`,
      ]).toString();
    expect(loadsYaml(null)).to.equal('false');
    expect(loadsYaml('defaults: {dataset: sales}\n')).to.equal('true');
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

  it('column rules: byName with a header row; add with schema auto, reject with a schema file', () => {
    const yaml = `
defaults: {relaxColumns: true}
routes:
  - match: "typed/*.csv"
    schema: s.json
  - match: "raw/*.csv"
    csv: {skipLeadingRows: 0}
  - match: "open/*.csv"
    schema: s.json
    columns: byPosition
    newColumns: add
    relaxColumns: false
  - match: "**/*.csv"
`;
    const config = loadConfig({}, files({ 'ingest.yaml': yaml, 's.json': SALES_SCHEMA }));
    expect(config.routes.map((r) => r.columns)).to.deep.equal([
      { match: 'byName', newColumns: 'reject', relax: true },
      { match: 'byPosition', newColumns: 'add', relax: true },
      { match: 'byPosition', newColumns: 'add', relax: false },
      { match: 'byName', newColumns: 'add', relax: true },
    ]);
  });

  it('refuses columns: byName without a header row, naming the field', () => {
    const yaml = `routes:\n  - match: "**/*.csv"\n    columns: byName\n    csv: {skipLeadingRows: 0}\n`;
    expect(() => loadConfig({}, files({ 'ingest.yaml': yaml }))).to.throw(
      ConfigError,
      /routes\[0\]\.columns.*byName needs a header row/,
    );
  });

  it('accepts matches that can match a CSV object', () => {
    for (const match of ['**', 'in/*', 'in/*sv', 'in/{name}', 'in/*.gz', 'in/*.CSV', 'a.csv.gz']) {
      const config = loadConfig({}, files({ 'ingest.yaml': `routes: [{match: "${match}"}]` }));
      expect(config.routes[0]?.match).to.equal(match);
    }
  });

  it('takes LOG_LEVEL and INGEST_SHUTDOWN_GRACE_SECONDS from the environment', () => {
    const config = loadConfig(
      { LOG_LEVEL: 'debug', INGEST_SHUTDOWN_GRACE_SECONDS: '0.5' },
      files({}),
    );
    expect(config).to.include({ logLevel: 'debug', shutdownGraceSeconds: 0.5 });
    expect(loadConfig({}, files({}))).to.include({
      logLevel: 'info',
      shutdownGraceSeconds: undefined,
    });
  });

  it('lineage: false by default, true under defaults or per route, the route deciding', () => {
    const yaml = `
defaults: {lineage: true}
routes:
  - match: "plain/*.csv"
    lineage: false
  - match: "**/*.csv"
`;
    const config = loadConfig({}, files({ 'ingest.yaml': yaml }));
    expect(config.routes.map((r) => [r.match, r.lineage])).to.deep.equal([
      ['plain/*.csv', false],
      ['**/*.csv', true],
    ]);
    const perRoute = `routes:\n  - match: "a/*.csv"\n    lineage: true\n  - match: "**/*.csv"\n`;
    expect(
      loadConfig({}, files({ 'ingest.yaml': perRoute })).routes.map((r) => r.lineage),
    ).to.deep.equal([true, false]);
    expect(loadConfig({}, files({})).routes.map((r) => r.lineage)).to.deep.equal([false, false]);
  });

  it('accepts write: replace', () => {
    const yaml = `routes:\n  - match: "**/*.csv"\n    write: replace\n`;
    expect(loadConfig({}, files({ 'ingest.yaml': yaml })).routes[0]).to.include({
      write: 'replace',
      batch: false,
    });
  });

  it('takes the project from GOOGLE_CLOUD_PROJECT when the file names none', () => {
    expect(loadConfig({ GOOGLE_CLOUD_PROJECT: 'env-project' }, files({})).project).to.equal(
      'env-project',
    );
  });

  it('accepts a PORT from 0 to 65535, or none', () => {
    for (const PORT of ['8081', '0', '65535', undefined])
      expect(() => loadConfig({ PORT }, files({})), String(PORT)).not.to.throw();
  });

  it('accepts templates that can form valid names', () => {
    const yaml = `
routes:
  - match: "{team}/{table}/{yyyy}/{mm}/{dd}/*.csv"
    dataset: "team_{team}"
    table: "{table}_v2"
    write: partition
  - match: "{yyyy}/{mm}/*.csv"
    write: partition
    partition: "{yyyy}{mm}01"
  - match: "fixed/*.csv"
    dataset: Raw_2026
    table: orders
    write: partition
    partition: "20260101"
`;
    const routes = loadConfig({}, files({ 'ingest.yaml': yaml })).routes;
    expect(routes.map((r) => [r.dataset, r.table, r.partition])).to.deep.equal([
      ['team_{team}', '{table}_v2', '{yyyy}{mm}{dd}'],
      ['ingest', undefined, '{yyyy}{mm}01'],
      ['Raw_2026', 'orders', '20260101'],
    ]);
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
    {
      name: 'broken YAML',
      files: { 'ingest.yaml': 'location: EU\nroutes: [\n' },
      error:
        'ingest.yaml: line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    },
    {
      name: 'an unquoted glob, which YAML reads as an alias',
      files: { 'ingest.yaml': 'routes:\n  - match: "in/*.csv"\n  - match: **/*.csv\n' },
      error: `ingest.yaml: line 3, column 12: "**/*.csv" starts with "*", which YAML reads as an alias: quote it: match: '**/*.csv'`,
    },
    {
      name: 'an unquoted glob in a list',
      files: { 'ingest.yaml': 'buckets:\n  - *.csv\n' },
      error: `ingest.yaml: line 2, column 5: "*.csv" starts with "*", which YAML reads as an alias: quote it: '*.csv'`,
    },
    {
      name: 'a tab as indentation',
      files: { 'ingest.yaml': 'defaults:\n\tdataset: raw\n' },
      error: 'ingest.yaml: line 2, column 1: Tabs are not allowed as indentation',
    },
    {
      name: 'an unknown top-level field',
      files: { 'ingest.yaml': 'rutes: []' },
      error: 'ingest.yaml: rutes: is not a known field',
    },
    {
      name: 'an unknown write mode',
      files: { 'ingest.yaml': 'routes: [{match: "*.csv", write: upsert}]' },
      error: 'ingest.yaml: routes[0].write: ',
    },
    {
      name: 'a route without match',
      files: { 'ingest.yaml': 'routes: [{dataset: x}]' },
      error: 'ingest.yaml: routes[0].match: is missing',
    },
    {
      name: 'an unknown csv option',
      files: { 'ingest.yaml': 'defaults: {csv: {delim: ";"}}' },
      error: 'ingest.yaml: defaults.csv.delim: is not a known field',
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
      error:
        'ingest.yaml: routes[0].match: "a/*.csv" does not capture {yyyy}, {mm}, {dd}: a partition route takes',
    },
    {
      name: 'a partition route by default without a day placeholder',
      files: {
        'ingest.yaml': 'defaults: {write: partition}\nroutes: [{match: "{yyyy}/{mm}/*.csv"}]',
      },
      error: 'ingest.yaml: routes[0].match: "{yyyy}/{mm}/*.csv" does not capture {dd}:',
    },
    ...['**/*.txt', 'in/data', 'in/*.csv.bak', 'in/{name}.json'].map((match) => ({
      name: `a match that can never match a CSV object (${match})`,
      files: { 'ingest.yaml': `routes: [{match: "${match}"}]` },
      error: `ingest.yaml: routes[0].match: "${match}" can never match a CSV object: only names ending in .csv or .csv.gz are loaded`,
    })),
    {
      name: 'batch: yes',
      files: { 'ingest.yaml': 'defaults: {batch: yes}' },
      error:
        'ingest.yaml: defaults.batch: is "yes": must be false (one load job per object) or a mapping of jobsPerDay, burst, maxFiles',
    },
    {
      name: 'lineage: "yes" under defaults',
      files: { 'ingest.yaml': 'defaults: {lineage: "yes"}' },
      error: 'ingest.yaml: defaults.lineage: Expected boolean, received string',
    },
    {
      name: 'a route lineage: yes',
      files: { 'ingest.yaml': 'routes: [{match: "*.csv", lineage: yes}]' },
      error: 'ingest.yaml: routes[0].lineage: Expected boolean, received string',
    },
    {
      name: 'a route batch: true',
      files: { 'ingest.yaml': 'routes: [{match: "*.csv", batch: true}]' },
      error: 'ingest.yaml: routes[0].batch: is true: must be false',
    },
    {
      name: 'a default dataset with a placeholder no route captures',
      files: { 'ingest.yaml': 'defaults: {dataset: "{team}"}\nroutes: [{match: "a/*.csv"}]' },
      error: 'ingest.yaml: defaults.dataset: uses {team}, which match "a/*.csv" does not capture',
    },
    {
      name: 'an unquoted placeholder, which YAML reads as a mapping',
      files: { 'ingest.yaml': 'routes:\n  - match: "in/{name}.csv"\n    table: {name}\n' },
      error:
        'ingest.yaml: routes[0].table: {name} is read by YAML as a mapping: quote it: table: "{name}"',
    },
    {
      name: 'a table template with a character no table name may have',
      files: { 'ingest.yaml': 'routes: [{match: "in/{name}.csv", table: "raw-{name}"}]' },
      error:
        'ingest.yaml: routes[0].table: "raw-{name}" can never be a valid BigQuery table name: "-" is not allowed (letters, digits and underscores only)',
    },
    {
      name: 'a fixed table name that is not valid',
      files: { 'ingest.yaml': 'routes: [{match: "in/*.csv", table: "sales.orders"}]' },
      error:
        'ingest.yaml: routes[0].table: "sales.orders" can never be a valid BigQuery table name: "." is not allowed (letters, digits and underscores only)',
    },
    {
      name: 'a fixed table name over 1024 characters',
      files: { 'ingest.yaml': `routes: [{match: "in/*.csv", table: "${'t'.repeat(1025)}"}]` },
      error: 'can never be a valid BigQuery table name: it has more than 1024 characters',
    },
    {
      name: 'a table template whose fixed part alone is 1024 characters',
      files: {
        'ingest.yaml': `routes: [{match: "in/{name}.csv", table: "${'t'.repeat(1024)}{name}"}]`,
      },
      error: 'can never be a valid BigQuery table name: it has more than 1024 characters',
    },
    {
      name: 'a dataset template with a character no dataset name may have',
      files: { 'ingest.yaml': 'routes: [{match: "{team}/*.csv", dataset: "team {team}"}]' },
      error:
        'ingest.yaml: routes[0].dataset: "team {team}" can never be a valid BigQuery dataset name: " " is not allowed (letters, digits and underscores only)',
    },
    {
      name: 'a default dataset that is not a valid name',
      files: { 'ingest.yaml': 'defaults: {dataset: my-data}' },
      error:
        'ingest.yaml: defaults.dataset: "my-data" can never be a valid BigQuery dataset name: "-" is not allowed (letters, digits and underscores only)',
    },
    {
      name: 'a partition template with separators',
      files: {
        'ingest.yaml':
          'routes: [{match: "{y}/{m}/{d}/*.csv", write: partition, partition: "{y}-{m}-{d}"}]',
      },
      error:
        'ingest.yaml: routes[0].partition: "{y}-{m}-{d}" can never be a partition date (YYYYMMDD): "-" is not allowed (digits only)',
    },
    {
      name: 'a partition template longer than YYYYMMDD',
      files: {
        'ingest.yaml':
          'routes: [{match: "{y}/{m}/{d}/*.csv", write: partition, partition: "2026{m}{d}001"}]',
      },
      error:
        'ingest.yaml: routes[0].partition: "2026{m}{d}001" can never be a partition date (YYYYMMDD): it has at least 9 digits',
    },
    {
      name: 'a fixed partition that is not a date',
      files: {
        'ingest.yaml': 'routes: [{match: "*.csv", write: partition, partition: "20261301"}]',
      },
      error:
        'ingest.yaml: routes[0].partition: "20261301" can never be a partition date (YYYYMMDD): it is not a calendar date',
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
      name: 'a schema file that is neither a list nor {"fields": [...]}',
      files: { 'ingest.yaml': 'defaults: {schema: s.json}', 's.json': '{"columns": []}' },
      error:
        'ingest.yaml: defaults.schema: schema file s.json: must be a list of fields or {"fields": [...]}',
    },
    {
      name: 'a schema field without a type',
      files: { 'ingest.yaml': 'defaults: {schema: s.json}', 's.json': '[{"name": "a"}]' },
      error: 'ingest.yaml: defaults.schema: schema file s.json[0].type: is missing',
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
      name: 'a PORT that is not a number',
      env: { PORT: 'abc' },
      files: {},
      error: 'environment: PORT: must be a port number, an integer from 0 to 65535',
    },
    {
      name: 'a PORT over 65535',
      env: { PORT: '65536' },
      files: {},
      error: 'environment: PORT: must be a port number, an integer from 0 to 65535',
    },
    {
      name: 'a shutdown grace that is not a number',
      env: { INGEST_SHUTDOWN_GRACE_SECONDS: 'x' },
      files: {},
      error: 'environment: INGEST_SHUTDOWN_GRACE_SECONDS: must be a number of seconds',
    },
    {
      name: 'a negative shutdown grace',
      env: { INGEST_SHUTDOWN_GRACE_SECONDS: '-1' },
      files: {},
      error: 'environment: INGEST_SHUTDOWN_GRACE_SECONDS: must be 0 or more seconds',
    },
    {
      name: 'an unknown log level',
      env: { LOG_LEVEL: 'verbose' },
      files: {},
      error:
        'environment: LOG_LEVEL: is "verbose": must be one of trace, debug, info, warn, error, fatal, silent',
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
