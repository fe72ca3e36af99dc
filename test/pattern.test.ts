import { expect } from 'chai';
import { compilePattern, matchPattern } from '../src/config/pattern';

describe('route patterns', () => {
  const cases: [string, string, Record<string, string> | undefined][] = [
    ['**/*.csv', 'a.csv', {}],
    ['**/*.csv', 'a/b/c.csv', {}],
    ['**/*.csv', 'a/b/c.csv.gz', undefined],
    ['*.csv', 'a/b.csv', undefined],
    ['in/*.csv', 'in/x.csv', {}],
    ['in/*.csv', 'in/sub/x.csv', undefined],
    ['sales/{table}/{yyyy}/*.csv', 'sales/orders/2026/p.csv', { table: 'orders', yyyy: '2026' }],
    ['sales/{table}/{yyyy}/*.csv', 'sales/orders/x/2026/p.csv', undefined],
    ['{name}.csv', 'orders.csv', { name: 'orders' }],
    ['a/**', 'a/b/c', {}],
    ['a/**/z.csv', 'a/z.csv', {}],
    ['a/**/z.csv', 'a/b/c/z.csv', {}],
    ['x.csv', 'xycsv', undefined],
    // the CSV ending matches in any case; the rest of the pattern stays case-sensitive
    ['**/*.csv', 'Orders.CSV', {}],
    ['**/*.csv', 'in/orders.Csv', {}],
    ['**/*.CSV', 'orders.csv', {}],
    ['**/*.csv.gz', 'in/Orders.CSV.GZ', {}],
    ['**/*.csv', 'Orders.CSV.GZ', undefined],
    ['{name}.csv', 'Orders.CSV', { name: 'Orders' }],
    ['in/*.csv', 'IN/orders.csv', undefined],
    ['orders.csv', 'ORDERS.csv', undefined],
    ['a.csv/*.csv', 'a.CSV/b.csv', undefined],
  ];
  for (const [pattern, name, expected] of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${name}`, () => {
      expect(matchPattern(compilePattern(pattern), name)).to.deep.equal(expected);
    });
  }
  const invalid: [string, RegExp][] = [
    ['/abs/*.csv', /relative/],
    ['a//b.csv', /empty path segment/],
    ['{a}/{a}.csv', /twice/],
    ['{1x}.csv', /invalid placeholder/],
    ['{open.csv', /unclosed/],
    ['a**.csv', /inside a segment/],
  ];
  for (const [pattern, error] of invalid)
    it(`refuses ${pattern}`, () => expect(() => compilePattern(pattern)).to.throw(error));
});
