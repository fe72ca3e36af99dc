import { expect } from 'chai';
import { LINEAGE_COLUMNS, planLoad, type TableColumn } from '../src/schema/columns';
import { schemaChanges } from '../src/schema/schema-changes';
import { badName } from '../src/schema/column-names';
import { detectType } from '../src/schema/detect-type';
import { DEFAULT_COLUMNS, type ColumnRules } from '../src/config';

const table: TableColumn[] = [
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'name', type: 'STRING', mode: 'NULLABLE' },
];

function plan(header: string[], rows: string[][] = [], rules: Partial<ColumnRules> = {}) {
  const shape = {
    write: 'append' as const,
    schema: 'auto' as const,
    columns: { ...DEFAULT_COLUMNS, ...rules },
  };
  return planLoad({ header, rows }, shape, table, 'ds.t');
}

describe('planLoad', () => {
  it('maps a reordered header by name, case aside, onto the table names', () => {
    expect(plan(['NAME', 'Id'])).to.deep.include({ into: ['name', 'id'], added: [], relaxed: [] });
  });

  it('adds columns the table lacks with the type their values have, after the table columns', () => {
    const result = plan(
      ['id', 'qty', 'name', 'note'],
      [
        ['1', '7', 'a', ''],
        ['2', '8', 'b', 'x'],
      ],
    );
    expect(result).to.deep.include({
      into: ['id', 'qty', 'name', 'note'],
      added: [
        { name: 'qty', type: 'INT64', mode: 'NULLABLE' },
        { name: 'note', type: 'STRING', mode: 'NULLABLE' },
      ],
    });
    expect(
      result !== 'fromFile' && 'table' in result && result.table.map((c) => c.name),
    ).to.deep.equal(['id', 'name', 'qty', 'note']);
  });

  it('relaxes a missing REQUIRED column only when relaxColumns says so', () => {
    expect(plan(['name'])).to.deep.equal({
      rejected:
        'column "id" of table ds.t is REQUIRED and missing from the file (relaxColumns: true would make it NULLABLE)',
    });
    expect(plan(['name'], [], { relax: true })).to.deep.include({ relaxed: ['id'] });
  });

  it('lets a declared column in under newColumns: reject, with its declared type', () => {
    const shape = {
      write: 'append' as const,
      schema: [
        { name: 'id', type: 'INT64' as const, mode: 'REQUIRED' as const },
        { name: 'name', type: 'STRING' as const },
        { name: 'day', type: 'DATE' as const },
      ],
      columns: { ...DEFAULT_COLUMNS, newColumns: 'reject' as const },
    };
    const result = planLoad({ header: ['id', 'day'], rows: [] }, shape, table, 'ds.t');
    expect(result).to.deep.include({ added: [{ name: 'day', type: 'DATE', mode: 'NULLABLE' }] });
    const other = planLoad({ header: ['id', 'other'], rows: [] }, shape, table, 'ds.t');
    expect(other).to.deep.equal({
      rejected: 'column "other" is not in table ds.t (newColumns: reject)',
    });
  });

  it('by position: extra trailing columns are added, fewer columns are rejected', () => {
    expect(plan(['a', 'b', 'c'], [], { match: 'byPosition' })).to.deep.include({
      into: ['id', 'name', 'c'],
    });
    expect(plan(['a'], [], { match: 'byPosition' }))
      .to.have.property('rejected')
      .that.matches(/^the file has 1 columns and table ds.t has 2 \(id, name\)/);
  });

  it("takes the file's columns for a new table, or for replace without a schema file", () => {
    const shape = { write: 'append' as const, schema: 'auto' as const, columns: DEFAULT_COLUMNS };
    expect(planLoad({ header: ['a'], rows: [] }, shape, undefined, 'ds.t')).to.equal('fromFile');
    expect(
      planLoad({ header: ['a'], rows: [] }, { ...shape, write: 'replace' }, table, 'ds.t'),
    ).to.equal('fromFile');
  });
});

describe('planLoad on a lineage route', () => {
  const shape = {
    write: 'append' as const,
    schema: 'auto' as const,
    columns: { ...DEFAULT_COLUMNS },
    lineage: true,
  };
  const names = (columns: readonly TableColumn[]) => columns.map((c) => c.name);

  it('adds the three lineage columns to a table without them, NULLABLE, after its columns', () => {
    const result = planLoad({ header: ['name', 'id'], rows: [] }, shape, table, 'ds.t');
    if (result === 'fromFile' || 'rejected' in result) throw new Error(JSON.stringify(result));
    expect(result.into).to.deep.equal(['name', 'id']);
    expect(names(result.table)).to.deep.equal(['id', 'name', ...names(LINEAGE_COLUMNS)]);
    expect(result.added).to.deep.equal([...LINEAGE_COLUMNS]);
    expect(result.added.every((c) => c.mode === 'NULLABLE')).to.equal(true);
  });

  it('plans the file against the data columns only, keeping the lineage columns where they are', () => {
    const tracked = [
      ...table,
      ...LINEAGE_COLUMNS,
      { name: 'late', type: 'STRING', mode: 'NULLABLE' as const },
    ];
    const result = planLoad(
      { header: ['id', 'name', 'late', 'extra'], rows: [['1', 'a', 'b', 'c']] },
      shape,
      tracked,
      'ds.t',
    );
    if (result === 'fromFile' || 'rejected' in result) throw new Error(JSON.stringify(result));
    expect(names(result.table)).to.deep.equal([...names(tracked), 'extra']);
    expect(names(result.added)).to.deep.equal(['extra']);
  });

  it('rejects a header that names a lineage column, in any case', () => {
    const result = planLoad({ header: ['id', '_Source_URI'], rows: [] }, shape, table, 'ds.t');
    expect(result)
      .to.have.property('rejected')
      .that.matches(/_Source_URI.*lineage: true/);
    expect(
      planLoad({ header: ['_loaded_at'], rows: [] }, shape, undefined, 'ds.t'),
    ).to.have.property('rejected');
  });

  it('lets a plain route load a column of that name', () => {
    expect(plan(['id', 'name', '_source_uri'])).to.deep.include({
      into: ['id', 'name', '_source_uri'],
    });
  });
});

describe('badName', () => {
  it("accepts BigQuery's flexible column names", () => {
    expect(badName(['id', 'Straße', 'price-eur', 'a b', '1st', 'x&y'])).to.equal(undefined);
  });
  it('names a column BigQuery cannot use', () => {
    expect(badName(['id', 'a.b'])).to.match(/column name "a\.b" has characters/);
    expect(badName(['_PARTITIONTIME'])).to.match(/starts with _PARTITION, which BigQuery reserves/);
    expect(badName(['x'.repeat(301)])).to.match(/longer than BigQuery's 300 characters/);
  });
  it('suggests csv.delimiter when a header name holds a whole semicolon- or tab-separated header', () => {
    expect(badName(['id;name;amount'])).to.equal(
      'column name "id;name;amount" has characters BigQuery does not allow in a column name: it looks like a file separated by ";"; if it is, set csv.delimiter: ";" on its route',
    );
    expect(badName(['id\tname\tamount'])).to.match(
      /^column name "id\\tname\\tamount" has .*; if it is, set csv\.delimiter: "\\t" on its route$/,
    );
    expect(badName(['a.b'])).not.to.include('csv.delimiter');
  });
});

describe('detectType', () => {
  it('takes the narrowest type that reads every value, blanks aside', () => {
    expect(detectType(['1', '', '-2'])).to.equal('INT64');
    expect(detectType(['1', '2.5'])).to.equal('FLOAT64');
    expect(detectType(['true', 'FALSE'])).to.equal('BOOL');
    expect(detectType(['2024-01-31'])).to.equal('DATE');
    expect(detectType(['2024-01-31T10:00:00Z'])).to.equal('TIMESTAMP');
    expect(detectType(['1', 'x'])).to.equal('STRING');
    expect(detectType([''])).to.equal('STRING');
  });
});

describe('schemaChanges', () => {
  it('words additions, relaxations, type changes and drops', () => {
    const after: TableColumn[] = [
      { name: 'id', type: 'STRING', mode: 'NULLABLE' },
      { name: 'extra', type: 'STRING', mode: 'NULLABLE' },
    ];
    expect(schemaChanges(table, after)).to.deep.equal([
      'changed column id from INT64 to STRING',
      'added column extra STRING',
      'dropped column name',
    ]);
    expect(
      schemaChanges(table, [{ ...table[0]!, mode: 'NULLABLE', type: 'INTEGER' }, table[1]!]),
    ).to.deep.equal(['relaxed column id to NULLABLE']);
  });
});
