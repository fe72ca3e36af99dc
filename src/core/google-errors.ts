// Errors from the Google client libraries (Cloud Storage, BigQuery): ApiError carries the HTTP status
// in `code` (a number) and the JSON API's error list, each with a `reason`, in `errors`; network
// failures carry Node's error code (a string) in `code`.

export function httpStatusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function reasonsOf(error: unknown): string[] {
  const errors = (error as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .map((e: unknown) => (e as { reason?: unknown } | null)?.reason)
    .filter((r) => typeof r === 'string');
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Whether a retry may get past the error: HTTP 408, 429 or 5xx, an error reason in
 * `transientReasons` whatever the status, or a network failure.
 */
export function isTransientGoogleError(
  error: unknown,
  transientReasons: ReadonlySet<string> = new Set(),
): boolean {
  const status = httpStatusOf(error);
  if (status === 408 || status === 429 || (status !== undefined && status >= 500)) return true;
  if (reasonsOf(error).some((r) => transientReasons.has(r))) return true;
  if (status !== undefined) return false;
  const { code, name, type, message } = (error ?? {}) as {
    code?: unknown;
    name?: unknown;
    type?: unknown;
    message?: unknown;
  };
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  // node-fetch (under the client) reports `type: 'system'` for socket errors, 'request-timeout' for timeouts.
  if (type === 'system' || type === 'request-timeout' || name === 'AbortError') return true;
  return typeof message === 'string' && /socket hang up|timed? ?out/i.test(message);
}
