import { expect } from 'chai';
import * as zlib from 'node:zlib';
import { DEFAULT_CSV } from '../src/config';
import { HEAD_BYTES, checkHead } from '../src/schema/header';

function input(text: string | Buffer, overrides: Partial<Parameters<typeof checkHead>[0]> = {}) {
  const head = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return {
    head,
    complete: true,
    gzip: false,
    csv: DEFAULT_CSV,
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
      name: 'a duplicate header name',
      input: input('id,name,name\n1,x,y\n'),
      reason: /^duplicate column name "name"/,
    },
    {
      name: 'no header row: repeated values are data',
      input: input('1,1\n2,2\n', { csv: { ...DEFAULT_CSV, skipLeadingRows: 0 } }),
      reason: undefined,
    },
    { name: 'header only (it loads 0 rows)', input: input('a,b\n'), reason: undefined },
    {
      name: 'header only, but more may follow',
      input: input('a,b\n', { complete: false }),
      reason: /no complete header|no data rows/,
    },
    {
      name: 'an unterminated quote in the header',
      input: input('a,"b\n1,2\n'),
      reason: /^malformed CSV at record 1/,
    },
    {
      name: 'a malformed data row, which the load judges (maxBadRecords may allow it)',
      input: input('a,b\n"1,2\n'),
      reason: undefined,
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
      reason:
        /^not valid UTF-8: invalid byte sequence at offset 6 \(line 2\); set csv\.encoding: ISO-8859-1 for Latin-1 files$/,
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
      input: input(zlib.gzipSync('id,name,amount\n1,x,2\n'), { gzip: true }),
      reason: undefined,
    },
    {
      name: 'a .gz that is not gzip',
      input: input('a,b\n1,2\n', { gzip: true }),
      reason: /^not valid gzip data/,
    },
    {
      name: 'a semicolon delimiter',
      input: input('id;name;amount\n1;x;2\n', { csv: { ...DEFAULT_CSV, delimiter: ';' } }),
      reason: undefined,
    },
    {
      name: 'no header row (skipLeadingRows 0)',
      input: input('1,x,2\n', { csv: { ...DEFAULT_CSV, skipLeadingRows: 0 } }),
      reason: undefined,
    },
  ];
  for (const c of cases) {
    it(`${c.reason ? 'rejects' : 'accepts'} ${c.name}`, async () => {
      const head = await checkHead(c.input);
      if (c.reason) expect(head).to.have.property('problem').that.matches(c.reason);
      else expect(head).to.have.property('header');
    });
  }

  it('marks a whole object that is only its header, and nothing cut short', async () => {
    expect(await checkHead(input('a,b\n'))).to.deep.equal({
      header: ['a', 'b'],
      rows: [],
      headerOnly: true,
    });
    expect(await checkHead(input('a,b\n', { complete: false }))).to.not.have.property('headerOnly');
    expect(await checkHead(input('a,b\n1,2\n'))).to.not.have.property('headerOnly');
  });

  it('inflates at most a head of a gzip bomb', async () => {
    const bomb = zlib.gzipSync(
      Buffer.concat([Buffer.from('a,b\n'), Buffer.alloc(50 * 1024 * 1024, '1,2\n')]),
    );
    expect(bomb.length).to.be.lessThan(HEAD_BYTES * 2);
    const head = await checkHead(
      input(bomb.subarray(0, HEAD_BYTES), { gzip: true, complete: false }),
    );
    expect(head).to.have.property('header').that.deep.equals(['a', 'b']);
  });

  it('gives the header, trimmed, and the whole data rows of the head', async () => {
    const head = await checkHead(input(' id , ,price\n1,a,2.5\n2,b,', { complete: false }));
    expect(head).to.deep.equal({
      header: ['id', 'string_field_1', 'price'],
      rows: [['1', 'a', '2.5']],
    });
  });

  it('names the columns of a file without a header row string_field_N', async () => {
    const head = await checkHead(
      input('1,x\n2,y\n', { csv: { ...DEFAULT_CSV, skipLeadingRows: 0 } }),
    );
    expect(head).to.deep.equal({
      header: ['string_field_0', 'string_field_1'],
      rows: [
        ['1', 'x'],
        ['2', 'y'],
      ],
    });
  });
});
