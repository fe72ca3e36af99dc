import { TransientError, errorMessage } from '../../core/errors';
import { isTransientGoogleError, httpStatusOf } from '../../core/google-errors';

const TRANSIENT_HTTP_REASONS = new Set([
  'backendError',
  'internalError',
  'badGateway',
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'quotaExceeded',
  'jobRateLimitExceeded',
]);

export function toWarehouseError(error: unknown, action: string): Error {
  const status = httpStatusOf(error);
  const what = status === undefined ? 'network error' : `HTTP ${status}`;
  const message = `${action}: ${what}: ${errorMessage(error)}`;
  return isTransientGoogleError(error, TRANSIENT_HTTP_REASONS)
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}
