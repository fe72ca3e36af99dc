import type { File, Storage } from '@google-cloud/storage';
import { TransientError, errorMessage } from '../core/errors';
import { httpStatusOf, isTransientGoogleError } from '../core/google-errors';
import { withTimeout } from '../core/timeout';

/** How the Cloud Storage store makes each call: on which client, and how long one may take. */
export interface GcsCalls {
  storage: Storage;
  /** The live object, or exactly the given generation of it. */
  file(bucket: string, name: string, generation?: string): File;
  /** The call's answer, or a transient failure once `action` on `uri` has waited the request timeout. */
  call<T>(work: Promise<T>, action: string, uri: string): Promise<T>;
}

export function createGcsCalls(storage: Storage, requestTimeoutMs: number): GcsCalls {
  const ms = requestTimeoutMs;
  return {
    storage,
    file: (bucket, name, generation) =>
      storage.bucket(bucket).file(name, generation === undefined ? {} : { generation }),
    call: (work, action, uri) =>
      withTimeout(work, ms, `Cloud Storage ${action} ${uri}: no answer within ${ms} ms`),
  };
}

/**
 * A transient Google client error, or a read of an object's body (readHead) that broke off after the
 * response began, which Node reports as a premature close or as `aborted`.
 */
function isTransient(error: unknown): boolean {
  if (isTransientGoogleError(error)) return true;
  if (httpStatusOf(error) !== undefined) return false;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    (typeof message === 'string' && /premature close|aborted/i.test(message))
  );
}

export function toStoreError(error: unknown, action: string, uri: string): Error {
  if (error instanceof TransientError) return error;
  const status = httpStatusOf(error);
  if (isTransient(error)) {
    const what = status === undefined ? 'network error' : `HTTP ${status}`;
    return new TransientError(`Cloud Storage ${action} ${uri}: ${what}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const what = status === undefined ? 'failed' : `failed with HTTP ${status}`;
  return new Error(`Cloud Storage ${action} ${uri} ${what}: ${errorMessage(error)}`, {
    cause: error,
  });
}
