import { expect } from 'chai';
import { classifyPath } from '../../src/cli/watch-paths';

describe('which paths the local Eventarc sends', () => {
  const buckets = '/data/buckets';
  const cases: [string, string][] = [
    ['/data/buckets', 'watch'],
    ['/data/buckets/demo', 'watch'],
    ['/data/buckets/demo/in/a.csv', 'watch'],
    ['/data/buckets/demo/.a.csv.swp', 'ignore'],
    ['/data/buckets/demo/.git/x.csv', 'ignore'],
    ['/data/buckets/.hidden', 'ignore'],
    ['/data/buckets/demo/_quarantine', 'ignore'],
    ['/data/buckets/demo/_quarantine/a.csv', 'ignore'],
    ['/data/buckets/demo/_quarantined.csv', 'watch'],
    ['/data/elsewhere/a.csv', 'ignore'],
    ['/data/buckets/t1', 'invalid-bucket'],
    ['/data/buckets/t1/a.csv', 'invalid-bucket'],
    ['/data/buckets/Demo/a.csv', 'invalid-bucket'],
  ];
  for (const [file, kind] of cases) {
    it(`${file}: ${kind}`, () => {
      expect(classifyPath(buckets, file, '_quarantine/').kind).to.equal(kind);
    });
  }

  it('names the folder and the rule when a folder is not a bucket name', () => {
    const result = classifyPath(buckets, '/data/buckets/t1/a.csv', '_quarantine/');
    expect(result).to.deep.include({ kind: 'invalid-bucket', bucket: 't1' });
    expect(result.kind === 'invalid-bucket' && result.warning).to.equal(
      'ignoring /data/buckets/t1: "t1" is not a valid bucket name (3-63 characters of lower-case letters, digits, "-", "_" and ".", starting and ending with a letter or digit); its files are not sent',
    );
  });
});
