import { expect } from 'chai';
import * as fs from 'node:fs';
import { PERFORMANCE_DOC, readResults, renderResults, type Results } from '../../bench/readme';

describe('the results table of docs/performance.md', () => {
  it('is what npm run bench:readme makes of the committed bench/results.json', async () => {
    const doc = fs.readFileSync(PERFORMANCE_DOC, 'utf8');
    expect(await renderResults(doc, readResults())).to.equal(doc);
  });

  it('names the runtime and the compile cache of the run, and every benchmark', async () => {
    const results: Results = {
      machine: {
        cpus: 2,
        model: 'Test CPU',
        memory: '1.0 GiB',
        node: 'v22.0.0',
        image: 'node:22-slim',
        compileCache: 'NODE_COMPILE_CACHE, warmed',
        date: '2026-01-02T03:04:05.000Z',
        command: 'npm run bench',
      },
      benchmarks: [
        {
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
        },
      ],
    };
    const doc = await renderResults(fs.readFileSync(PERFORMANCE_DOC, 'utf8'), results);
    expect(doc).to.contain("Node v22.0.0, the runtime of the image's `node:22-slim`");
    expect(doc).to.contain('Compile cache: NODE_COMPILE_CACHE, warmed.');
    expect(doc).to.match(
      /\| made-up +\| +2 s \| +1 s \| +2 \| 1\.5–2\.5 \| +3 \| <= 3 +\| yes +\|/,
    );
  });
});
