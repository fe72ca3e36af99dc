import { TransientError } from './errors';

/**
 * The work's result, or a TransientError with `message` once `ms` have passed without one. The work
 * itself is not stopped: the Google clients' own timeouts and retries can outlast a request's budget
 * (Cloud Storage: 60 s a try, several tries), so each call is raced against the time it may take.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransientError(message)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
