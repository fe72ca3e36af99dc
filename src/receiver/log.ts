import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

// Cloud Logging reads `severity` and `message` from JSON lines on stdout, and links a line to its
// request through `logging.googleapis.com/trace`.
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      messageKey: 'message',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    },
    destination,
  );
}

/** The trace fields for a request, from W3C `traceparent` or Google's `X-Cloud-Trace-Context`. */
export function traceFields(
  headers: Record<string, string | string[] | undefined>,
  project: string | undefined,
): Record<string, string | boolean> {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  let traceId: string | undefined;
  let spanId: string | undefined;
  let sampled = false;
  const parent = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(
    header('traceparent') ?? '',
  );
  const cloud = /^([0-9a-f]{32})(?:\/(\d+))?(?:;o=(\d))?/.exec(
    header('x-cloud-trace-context') ?? '',
  );
  if (parent) {
    [traceId, spanId] = [parent[1], parent[2]];
    sampled = (parseInt(parent[3] ?? '0', 16) & 1) === 1;
  } else if (cloud) {
    traceId = cloud[1];
    spanId = cloud[2] ? BigInt(cloud[2]).toString(16).padStart(16, '0') : undefined;
    sampled = cloud[3] === '1';
  }
  if (!traceId) return {};
  const fields: Record<string, string | boolean> = {
    'logging.googleapis.com/trace': project ? `projects/${project}/traces/${traceId}` : traceId,
    'logging.googleapis.com/trace_sampled': sampled,
  };
  if (spanId) fields['logging.googleapis.com/spanId'] = spanId;
  return fields;
}
