import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startReceiver } from '../../src/cli/receiver';
import { freePort } from '../helpers/server';

describe('the receiver dev starts', function () {
  this.timeout(60_000);
  let dir: string;
  const env = () => ({
    ...process.env,
    INGEST_BACKEND: 'local',
    INGEST_CONFIG: '',
    LOCAL_DATA_DIR: dir,
  });
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'receiver-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is ready once it listens and answers health', async () => {
    const port = await freePort();
    const receiver = await startReceiver(env(), port);
    try {
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).to.equal(200);
    } finally {
      receiver.process.kill('SIGTERM');
      expect(await receiver.exited).to.equal(0);
    }
  });

  it('fails naming the port when another process holds it, even one answering health', async () => {
    const requests: string[] = [];
    const other = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.end('{"status":"ok"}');
    });
    const port = await freePort();
    await new Promise<void>((resolve) => other.listen(port, resolve));
    try {
      const error = await startReceiver(env(), port).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(error)).to.include(`port ${port} is already in use`);
      expect(requests).to.deep.equal([]);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
