import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { portError } from './port';
import type { ReceiverMessage } from './receiver-child';

const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const START_TIMEOUT_MS = 30_000;

export interface Receiver {
  process: ChildProcess;
  /** Resolves with the exit code once the receiver has stopped. */
  exited: Promise<number>;
}

/**
 * Starts the receiver as a child process and resolves once that child reports its server listening
 * on `port` and answers a health check. An answer from whatever else holds the port never counts.
 */
export async function startReceiver(env: NodeJS.ProcessEnv, port: number): Promise<Receiver> {
  // The receiver logs JSON for Cloud Logging; `dev` prints one readable line per outcome instead.
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, 'receiver-child.js'),
      '--target=ingest',
      '--signature-type=http',
      `--source=${PACKAGE_ROOT}`,
    ],
    {
      env: { LOG_LEVEL: 'error', NODE_ENV: 'production', ...env, PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );
  const receiver = { process: child, exited };
  try {
    await listening(child, port, exited);
    await healthy(`http://localhost:${port}/health`, exited);
    return receiver;
  } catch (error) {
    child.kill('SIGTERM');
    await exited;
    throw error;
  }
}

function listening(child: ChildProcess, port: number, exited: Promise<number>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the receiver did not listen on port ${port} within 30 s`)),
      START_TIMEOUT_MS,
    );
    child.on('message', (message: ReceiverMessage) => {
      clearTimeout(timer);
      if (message.listening === port) resolve();
      else if (message.failed !== undefined) reject(portError(port, message.failed));
      else reject(new Error(`the receiver listens on ${message.listening}, not ${port}`));
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the receiver stopped while starting (exit code ${code})`));
    });
  });
}

async function healthy(url: string, exited: Promise<number>): Promise<void> {
  let stopped = false;
  void exited.then(() => (stopped = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!stopped && Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not answering yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    stopped ? 'the receiver stopped while starting' : `the receiver did not answer on ${url}`,
  );
}
