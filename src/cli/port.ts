import * as net from 'node:net';
import { InvalidArgumentError } from 'commander';

/** `--port` / `PORT` -> a TCP port number; commander names the option or variable it came from. */
export function parsePort(value: string): number {
  const port = /^[0-9]{1,5}$/.test(value.trim()) ? Number(value) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError('Expected a port number from 1 to 65535.');
  }
  return port;
}

/**
 * Resolves when nothing listens on `port`, binding the way the Functions Framework does (every
 * address). Otherwise rejects with one line naming the port.
 */
export function checkPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => reject(portError(port, error.code)));
    probe.listen(port, () => probe.close(() => resolve()));
  });
}

export function portError(port: number, code: string | undefined): Error {
  if (code === 'EADDRINUSE') {
    return new Error(
      `port ${port} is already in use (another gcs-bq-ingest dev?): stop that process, or choose another port with --port or PORT`,
    );
  }
  return new Error(`port ${port} cannot be listened on (${code ?? 'unknown error'})`);
}
