import { expect } from 'chai';
import * as fs from 'node:fs';
import {
  PEER_LINE,
  PERFORMANCE_DOC,
  readResults,
  renderResults,
  type Results,
} from '../../bench/readme';

describe('the results table of docs/performance.md', () => {
  it('is what npm run bench:readme makes of the committed bench/results.json', async () => {
    const doc = fs.readFileSync(PERFORMANCE_DOC, 'utf8');
    expect(await renderResults(doc, readResults())).to.equal(doc);
  });

  const machine: Results['machine'] = {
    cpus: 2,
    model: 'Test CPU',
    memory: '1.0 GiB',
    node: 'v22.0.0',
    image: 'node:22-slim',
    compileCache: 'NODE_COMPILE_CACHE, warmed',
    date: '2026-01-02T03:04:05.000Z',
    command: 'npm run bench',
  };
  const madeUp: Results['benchmarks'][number] = {
    name: 'made-up',
    unit: 's',
    value: 2,
    baseline: 1,
    ratio: 2,
    min: 1.5,
    max: 2.5,
    rounds: 3,
    target: '<= 3',
    met: true,
  };

  it('names the runtime and the compile cache of the run, and every benchmark', async () => {
    const results: Results = { machine, benchmarks: [madeUp] };
    const doc = await renderResults(fs.readFileSync(PERFORMANCE_DOC, 'utf8'), results);
    expect(doc).to.contain("Node v22.0.0, the runtime of the image's `node:22-slim`");
    expect(doc).to.contain('Compile cache: NODE_COMPILE_CACHE, warmed.');
    expect(doc).to.match(
      /\| made-up +\| +2 s \| +1 s \| +2 \| 1\.5–2\.5 \| +3 \| <= 3 +\| yes +\|/,
    );
  });

  it('shows the peer’s figure beside the service’s, and says what the peer is', async () => {
    const vsPeer = {
      ...madeUp,
      name: 'made-up-vs-peer',
      value: 450,
      baseline: 500,
      unit: 'ms',
      ratio: 0.9,
      target: '<= 1.0',
      against: 'peer' as const,
    };
    const doc = await renderResults(fs.readFileSync(PERFORMANCE_DOC, 'utf8'), {
      machine,
      benchmarks: [vsPeer, madeUp],
    });
    expect(doc).to.match(/\| made-up-vs-peer +\| +450 ms \| +500 ms \(peer\) \| +0\.9 \|/);
    expect(doc).to.match(/\| made-up +\| +2 s \| +1 s \| +2 \|/);
    const section = doc.slice(doc.indexOf('<!-- bench:results -->'));
    expect(section.slice(0, section.indexOf('<!-- /bench:results -->'))).to.contain(PEER_LINE);
    expect(PEER_LINE).to.contain('`bench/peer/`');
  });

  it('leaves the line about the peer out when no row is measured against it', async () => {
    const doc = await renderResults(fs.readFileSync(PERFORMANCE_DOC, 'utf8'), {
      machine,
      benchmarks: [madeUp],
    });
    expect(doc).not.to.contain(PEER_LINE);
  });
});
