import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger, traceFields } from '../src/receiver/log';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('logs in Cloud Logging format', () => {
  const severities: ['debug' | 'info' | 'warn' | 'error' | 'fatal', string][] = [
    ['debug', 'DEBUG'],
    ['info', 'INFO'],
    ['warn', 'WARNING'],
    ['error', 'ERROR'],
    ['fatal', 'CRITICAL'],
  ];
  for (const [level, severity] of severities) {
    it(`${level} -> severity ${severity}, with message and fields`, () => {
      const { lines, stream } = capture();
      const log = createLogger('debug', stream);
      log[level]({ uri: 'gs://b/a.csv', outcome: 'loaded', jobId: 'ingest_1' }, 'hello');
      expect(lines[0]).to.include({
        severity,
        message: 'hello',
        uri: 'gs://b/a.csv',
        outcome: 'loaded',
        jobId: 'ingest_1',
      });
      expect(lines[0]).to.not.have.any.keys('level', 'msg', 'pid', 'hostname');
    });
  }

  const traces: {
    name: string;
    headers: Record<string, string>;
    expected: Record<string, string | boolean>;
  }[] = [
    {
      name: 'W3C traceparent',
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      expected: {
        'logging.googleapis.com/trace': 'projects/my-proj/traces/0af7651916cd43dd8448eb211c80319c',
        'logging.googleapis.com/spanId': 'b7ad6b7169203331',
        'logging.googleapis.com/trace_sampled': true,
      },
    },
    {
      name: 'X-Cloud-Trace-Context',
      headers: { 'x-cloud-trace-context': '105445aa7843bc8bf206b12000100000/1;o=0' },
      expected: {
        'logging.googleapis.com/trace': 'projects/my-proj/traces/105445aa7843bc8bf206b12000100000',
        'logging.googleapis.com/spanId': '0000000000000001',
        'logging.googleapis.com/trace_sampled': false,
      },
    },
    { name: 'no trace header', headers: {}, expected: {} },
    { name: 'a malformed traceparent', headers: { traceparent: 'garbage' }, expected: {} },
  ];
  for (const { name, headers, expected } of traces) {
    it(`reads the trace from ${name}`, () => {
      expect(traceFields(headers, 'my-proj')).to.deep.equal(expected);
    });
  }
});
