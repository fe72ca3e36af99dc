import { expect } from 'chai';
import * as net from 'node:net';
import { checkPortFree, parsePort } from '../../src/cli/port';
import { freePort } from '../helpers/server';

describe('dev port', () => {
  for (const [value, port] of [
    ['8080', 8080],
    ['1', 1],
    ['65535', 65535],
  ] as const) {
    it(`accepts ${value}`, () => expect(parsePort(value)).to.equal(port));
  }
  for (const value of ['abc', '', '0', '65536', '80.5', '-1', '8080x', '1e3']) {
    it(`refuses "${value}"`, () => expect(() => parsePort(value)).to.throw(/1 to 65535/));
  }

  it('finds a free port free and a taken one taken, naming it', async () => {
    const port = await freePort();
    await checkPortFree(port);
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(port, resolve));
    try {
      const error = await checkPortFree(port).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(error)).to.include(`port ${port} is already in use`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
