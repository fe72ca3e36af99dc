import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import domain from 'node:domain';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import sinon from 'sinon';
import { installJsonFinalHandler, serveWithoutDomains } from '../src/receiver/framework';

describe('the Functions Framework’s seams', () => {
  const servers: http.Server[] = [];
  afterEach(() => sinon.restore());
  after(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  async function serve(name: string): Promise<string> {
    const server = getTestServer(name);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  it('runs an http function without a domain: no per-request domain, no async hook for it', async () => {
    serveWithoutDomains();
    const created = sinon.spy(domain, 'create');
    let seen: unknown = 'not called';
    functions.http('withoutDomain', (_req, res) => {
      seen = (process as NodeJS.Process & { domain?: unknown }).domain;
      res.status(200).json({ ok: true });
    });
    const answer = await fetch(await serve('withoutDomain'), { method: 'POST', body: '{}' });
    expect(answer.status).to.equal(200);
    expect(seen, 'process.domain').to.be.oneOf([null, undefined]);
    expect(created.called, 'domain.create was called').to.equal(false);
  });

  it('answers a handler that rejects with the JSON final handler (503, retryable by redelivery)', async () => {
    installJsonFinalHandler(1024 * 1024);
    serveWithoutDomains();
    functions.http('rejects', async () => {
      await Promise.resolve();
      throw new Error('boom');
    });
    const answer = await fetch(await serve('rejects'), { method: 'POST', body: '{}' });
    expect(answer.status).to.equal(503);
    expect(answer.headers.get('content-type')).to.match(/^application\/json/);
    expect(await answer.json()).to.deep.equal({
      error: 'the request could not be read',
      retryable: true,
    });
  });
});
