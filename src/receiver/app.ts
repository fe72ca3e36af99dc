import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config';
import { RequestError, TransientError, errorMessage } from '../core/errors';
import { parseRequest } from './events';
import { ingest, type Services } from '../ingest';
import type { IngestResult } from '../objects/outcomes';
import { traceFields, type Logger } from './log';
import { withTimeout } from '../core/timeout';

// How long past its deadline a request may take to answer with what its steps reported.
const ANSWER_GRACE_MS = 1000;

/** What the receiver reads of a request; the framework's request (with its `rawBody`) is one. */
export interface ReceiverRequest {
  method?: string;
  url?: string;
  headers: IncomingMessage['headers'];
  rawBody?: Buffer;
}

export interface HttpResponse {
  status: number;
  body: object;
}

/** Pages served besides events (the local status page), told of every outcome. */
export interface Pages {
  /** Answers the request when it is for a page; false when it is not. */
  serve(req: ReceiverRequest, res: ServerResponse): Promise<boolean>;
  record(result: IngestResult): void;
}

/**
 * The receiver: one request in, one JSON answer out. Services are built on the first event, not at
 * start, so that a cold start answers health checks at once.
 */
export function createReceiver(
  config: Config,
  services: () => Promise<Services>,
  logger: Logger,
  pages?: Pages,
) {
  let draining = false;

  async function respond(req: ReceiverRequest): Promise<HttpResponse> {
    const notAnEvent = answerWithoutEvent(req, draining);
    if (notAnEvent) return notAnEvent;
    const body = req.rawBody ?? Buffer.alloc(0);
    const trace = traceFields(req.headers, config.project);
    const log = Object.keys(trace).length > 0 ? logger.child(trace) : logger;
    try {
      if (body.length > config.maxBodyBytes) {
        throw new RequestError(
          `body: ${body.length} bytes is over the limit of ${config.maxBodyBytes}`,
          413,
        );
      }
      const request = parseRequest({ headers: req.headers, body });
      const deadline = Date.now() + config.waitSeconds * 1000;
      // Each step gives up by the deadline; should one not, the answer still goes out.
      const result = await withTimeout(
        ingest(request, await services(), deadline),
        deadline + ANSWER_GRACE_MS - Date.now(),
        `no answer within the time budget of ${config.waitSeconds} s (INGEST_WAIT_SECONDS); redelivery will follow what was started`,
      );
      logOutcomes(log, result, request.eventId ?? request.messageId);
      pages?.record(result);
      return { status: 200, body: result };
    } catch (error) {
      return failureAnswer(log, error);
    }
  }

  /** Every request being handled, until its answer has been written out. */
  const open = new Map<ServerResponse, Promise<void>>();

  return {
    respond,
    async handle(req: ReceiverRequest, res: ServerResponse): Promise<void> {
      if (pages && (await pages.serve(req, res))) return;
      open.set(
        res,
        new Promise<void>((resolve) => res.once('close', resolve).once('finish', resolve)),
      );
      try {
        send(res, await respond(req));
      } finally {
        // The answer may still be on its way out; `answered()` waits for it.
        void open.get(res)?.then(() => open.delete(res));
      }
    },
    /** Refuses new events with 503 and waits up to `ms` for those in flight; true when all were answered. */
    async drain(ms: number): Promise<boolean> {
      draining = true;
      return waitUntil(() => [...open.keys()].every((res) => res.headersSent), ms);
    },
    /** Answers every event still being handled with a retryable 503; its own answer, if it comes, is dropped. */
    refuseUnanswered(reason: string): number {
      const unanswered = [...open.keys()].filter((res) => !res.headersSent);
      for (const res of unanswered) send(res, unavailable(reason));
      return unanswered.length;
    },
    /** Resolves when every answer sent has been written out (or its connection closed), or after `ms`. */
    async answered(ms: number): Promise<boolean> {
      return waitUntil(() => open.size === 0, ms);
    },
  };
}

/** The answer to a request that is not an event to ingest: health, a wrong path or method, or any while draining. */
function answerWithoutEvent(req: ReceiverRequest, draining: boolean): HttpResponse | undefined {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    return draining ? unavailable('shutting down') : { status: 200, body: { status: 'ok' } };
  }
  if (path !== '/')
    return { status: 404, body: { error: `path ${path}: not found; events are POSTed to /` } };
  if (req.method !== 'POST') {
    return { status: 400, body: { error: `method ${req.method}: events are sent with POST` } };
  }
  if (draining) return unavailable('shutting down; redeliver to another instance');
  return undefined;
}

function failureAnswer(log: Logger, error: unknown): HttpResponse {
  if (error instanceof RequestError) {
    log.warn({ status: error.status }, error.message);
    return { status: error.status, body: { error: error.message } };
  }
  const message = errorMessage(error);
  // A transient failure is retried by redelivery: a warning. Anything else is a defect to see.
  if (error instanceof TransientError) log.warn({ status: 503 }, message);
  else log.error({ err: error }, `unexpected error: ${message}`);
  return unavailable(message);
}

async function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  return done();
}

function unavailable(error: string): HttpResponse {
  return { status: 503, body: { error, retryable: true } };
}

export function send(res: ServerResponse, { status, body }: HttpResponse): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

function logOutcomes(log: Logger, result: IngestResult, eventId: string | undefined): void {
  for (const object of result.objects) {
    const { uri, outcome, jobId, rows, destination, reason, schemaChanges, replacedRows } = object;
    const line = [
      `${uri} ${outcome}`,
      destination && `-> ${destination}`,
      rows !== undefined && `${rows} rows`,
      replacedRows !== undefined && `replaced ${replacedRows} rows`,
      schemaChanges && `schema: ${schemaChanges.join(', ')}`,
      reason,
    ]
      .filter(Boolean)
      .join(' ');
    const fields = {
      uri,
      generation: object.generation,
      outcome,
      jobId,
      destination,
      rows,
      reason,
      eventId,
      ...(schemaChanges ? { schemaChanges } : {}),
      ...(replacedRows !== undefined ? { replacedRows } : {}),
    };
    if (outcome === 'rejected') log.warn(fields, line);
    else log.info(fields, line);
  }
}
