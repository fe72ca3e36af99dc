import { expect } from 'chai';
import * as zlib from 'node:zlib';
import { DEFAULT_CSV, type SchemaField } from '../src/config';
import { HEAD_BYTES, checkHead, compareHeader } from '../src/header';

const schema: SchemaField[] = [
  { name: 'id', type: 'INT64' },
  { name: 'name', type: 'STRING' },
  { name: 'amount', type: 'NUMERIC' },
];

function input(text: string | Buffer, overrides: Partial<Parameters<typeof checkHead>[0]> = {}) {
  const head = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return {
    head,
    complete: true,
    gzip: false,
    csv: DEFAULT_CSV,
    schema: 'auto' as const,
    ...overrides,
  };
}

describe('checkHead', () => {
  const cases: {
    name: string;
    input: Parameters<typeof checkHead>[0];
    reason: RegExp | undefined;
  }[] = [
    { name: 'a plain CSV', input: input('a,b\n1,2\n'), reason: undefined },
    {
      name: 'two header names equal but for case',
      input: input('id,name,ID\n1,x,2\n'),
      reason: /^duplicate column name "ID" in the header/,
    },
    {
      name: 'a duplicate header name with a schema',
      input: input('id,name,name\n1,x,y\n', { schema }),
      reason: /^duplicate column name "name"/,
    },
    {
      name: 'no header row: repeated values are data',
      input: input('1,1\n2,2\n', { csv: { ...DEFAULT_CSV, skipLeadingRows: 0 } }),
      reason: undefined,
    },
    {
      name: 'the schema columns in order',
      input: input('id,name,amount\n1,x,2.5\n', { schema }),
      reason: undefined,
    },
    {
      name: 'header names in another case',
      input: input('ID,Name,AMOUNT\n1,x,2.5\n', { schema }),
      reason: undefined,
    },
    {
      name: 'a missing column',
      input: input('id,name\n1,x\n', { schema }),
      reason: /^header does not match the schema: missing column amount$/,
    },
    {
      name: 'an unexpected column',
      input: input('id,name,amount,extra\n1,x,2,3\n', { schema }),
      reason: /unexpected column extra$/,
    },
    {
      name: 'missing and unexpected',
      input: input('id,nom,amount\n1,x,2\n', { schema }),
      reason: /missing column name; unexpected column nom/,
    },
    {
      name: 'columns out of order',
      input: input('name,id,amount\nx,1,2\n', { schema }),
      reason: /not in the schema's order: expected id,name,amount, got name,id,amount/,
    },
    { name: 'header only', input: input('a,b\n'), reason: /^no data rows after the header$/ },
    {
      name: 'header only, but more may follow',
      input: input('a,b\n', { complete: false }),
      reason: /no complete header|no data rows/,
    },
    {
      name: 'an unterminated quote',
      input: input('a,b\n"1,2\n'),
      reason: /^malformed CSV at record 2/,
    },
    {
      name: 'binary data',
      input: input(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00])),
      reason: /^binary data: NUL byte at offset 4/,
    },
    {
      name: 'invalid UTF-8',
      input: input(
        Buffer.concat([Buffer.from('a,b\n1,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]),
      ),
      reason: /^not valid UTF-8: invalid byte sequence at offset 6 \(line 2\)/,
    },
    {
      name: 'a head cut inside a multi-byte character',
      input: input(Buffer.concat([Buffer.from('a,b\n1,'), Buffer.from('é').subarray(0, 1)]), {
        complete: false,
      }),
      reason: undefined,
    },
    {
      name: 'Latin-1 text when the encoding says so',
      input: input(Buffer.from('a,b\n1,\xe9\n', 'latin1'), {
        csv: { ...DEFAULT_CSV, encoding: 'ISO-8859-1' },
      }),
      reason: undefined,
    },
    {
      name: 'gzip data',
      input: input(zlib.gzipSync('id,name,amount\n1,x,2\n'), { gzip: true, schema }),
      reason: undefined,
    },
    {
      name: 'gzip with the wrong header',
      input: input(zlib.gzipSync('id,amount\n1,2\n'), { gzip: true, schema }),
      reason: /missing column name/,
    },
    {
      name: 'a .gz that is not gzip',
      input: input('a,b\n1,2\n', { gzip: true }),
      reason: /^not valid gzip data/,
    },
    {
      name: 'a semicolon delimiter',
      input: input('id;name;amount\n1;x;2\n', { schema, csv: { ...DEFAULT_CSV, delimiter: ';' } }),
      reason: undefined,
    },
    {
      name: 'no header row (skipLeadingRows 0)',
      input: input('1,x,2\n', { schema, csv: { ...DEFAULT_CSV, skipLeadingRows: 0 } }),
      reason: undefined,
    },
  ];
  for (const c of cases) {
    it(`${c.reason ? 'rejects' : 'accepts'} ${c.name}`, async () => {
      const reason = await checkHead(c.input);
      if (c.reason) expect(reason).to.match(c.reason);
      else expect(reason).to.equal(undefined);
    });
  }

  it('inflates at most a head of a gzip bomb', async () => {
    const bomb = zlib.gzipSync(
      Buffer.concat([Buffer.from('a,b\n'), Buffer.alloc(50 * 1024 * 1024, '1,2\n')]),
    );
    expect(bomb.length).to.be.lessThan(HEAD_BYTES * 2);
    expect(
      await checkHead(input(bomb.subarray(0, HEAD_BYTES), { gzip: true, complete: false })),
    ).to.equal(undefined);
  });
});

describe('compareHeader', () => {
  it('names every missing column', () => {
    expect(compareHeader(['id'], schema)).to.equal(
      'header does not match the schema: missing columns name, amount',
    );
  });
});
