import http from 'node:http';
import { createRequire } from 'node:module';
import { send, type HttpResponse } from './app';

// Bodies over the limit are read and dropped up to this size before the connection is cut.
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;

// The Functions Framework owns the HTTP server. Two of its defaults do not fit a service whose every
// answer must be JSON and whose in-flight loads must finish on shutdown; both are adjusted here, at
// the framework's own seams, before it builds its server.

interface ExpressApplication {
  handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    callback?: (error?: unknown) => void,
  ): void;
}

interface BodyParserError {
  status?: number;
  statusCode?: number;
  type?: string;
  message?: string;
}

type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

/**
 * The framework runs each `http` request inside a Node `domain` (deprecated), only to turn a stray
 * synchronous throw into a 500. The first domain turns on a process-wide async hook with a destroy
 * callback, after which every promise of every request is tracked until it is collected: a third
 * of the receiver's cost on a duplicate event. The receiver answers every error itself, and Express
 * hands a rejected handler's error to the final handler, so `http` functions are given to Express as
 * they are. The framework reads `wrapUserFunction` when it builds its server, after this runs.
 */
export function serveWithoutDomains(): void {
  const fromFramework = createRequire(require.resolve('@google-cloud/functions-framework'));
  const wrappers = fromFramework('./function_wrappers.js') as {
    wrapUserFunction(fn: HttpHandler, signatureType: string): HttpHandler;
  };
  const wrap = wrappers.wrapUserFunction;
  wrappers.wrapUserFunction = (fn, signatureType) =>
    signatureType === 'http' ? fn : wrap(fn, signatureType);
}

/**
 * Errors raised before the function runs (malformed JSON, an unsupported charset, a body over the
 * framework's limit) reach Express's final handler, which answers with an HTML page and a stack trace.
 * Express accepts a final handler per request through `app.handle`'s callback: ours answers JSON.
 * Bodies announced larger than `maxBodyBytes` are refused without being kept.
 */
export function installJsonFinalHandler(maxBodyBytes: number): void {
  const fromFramework = createRequire(require.resolve('@google-cloud/functions-framework'));
  const application = (fromFramework('express') as { application: ExpressApplication }).application;
  const handle = application.handle;
  application.handle = function (req, res, callback) {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > maxBodyBytes) {
      refuseBody(req, res, {
        status: 413,
        body: { error: `body: ${length} bytes is over the limit of ${maxBodyBytes}` },
      });
      return;
    }
    handle.call(this, req, res, callback ?? ((error?: unknown) => finalHandler(res, error)));
  };
}

/**
 * Reads and drops the body, then answers: a client still sending its body does not read the answer if
 * the connection is closed on it (it sees a reset, not the 413), and Node's own client stops reading an
 * answer that comes before its body is sent. A body past DISCARD_LIMIT_BYTES is answered and cut off.
 */
function refuseBody(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  answer: HttpResponse,
): void {
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded <= DISCARD_LIMIT_BYTES) return;
    res.setHeader('Connection', 'close');
    send(res, answer);
    req.destroy();
  });
  req.once('end', () => send(res, answer));
}

function finalHandler(res: http.ServerResponse, error: unknown): void {
  if (error === undefined) {
    send(res, { status: 404, body: { error: 'not found' } });
    return;
  }
  const { status = 500, statusCode, type, message = 'invalid request' } = error as BodyParserError;
  const code = statusCode ?? status;
  if (code === 413) send(res, { status: 413, body: { error: `body: ${message}` } });
  else if (type === 'entity.parse.failed')
    send(res, { status: 400, body: { error: `body: not valid JSON (${message})` } });
  else if (code >= 400 && code < 500)
    send(res, { status: 400, body: { error: `body: ${message}` } });
  else
    send(res, { status: 503, body: { error: 'the request could not be read', retryable: true } });
}

/**
 * The framework exits at once on SIGTERM and answers the latest request with a 500. Cloud Run sends
 * SIGTERM before stopping an instance and waits 10 s: `onSignal` replaces the framework's handlers
 * once its server listens, so in-flight loads can finish.
 */
export function takeOverShutdown(onSignal: (signal: NodeJS.Signals) => void): void {
  const createServer = http.createServer;
  const patched = ((...args: Parameters<typeof http.createServer>) => {
    const server = createServer(...args);
    server.once('listening', () =>
      // The framework registers its handlers in its own 'listening' callback, which runs after this one.
      setImmediate(() => {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) {
          process.removeAllListeners(signal);
          process.on(signal, () => onSignal(signal));
        }
      }),
    );
    http.createServer = createServer;
    return server;
  }) as typeof http.createServer;
  http.createServer = patched;
}
