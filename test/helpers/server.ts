import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const FRAMEWORK_MAIN = path.join(
  path.dirname(require.resolve('@google-cloud/functions-framework')),
  'main.js',
);

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningServer {
  url: string;
  port: number;
  process: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the Functions Framework with the `ingest` target as its own process, as Cloud Run does. */
export async function startReceiver(
  env: Record<string, string>,
  cwd = REPO_ROOT,
): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [FRAMEWORK_MAIN, '--target=ingest', '--signature-type=http', `--source=${REPO_ROOT}`],
    {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        METADATA_SERVER_DETECTION: 'none',
        GOOGLE_CLOUD_PROJECT: 'test-project',
        LOG_LEVEL: 'warn',
        ...env,
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}/`;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const server: RunningServer = {
    url,
    port,
    process: child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`receiver exited with ${child.exitCode}: ${output}`);
    try {
      if ((await fetch(`${url}health`)).ok) return server;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await server.stop('SIGKILL');
  throw new Error(`receiver did not become healthy: ${output}`);
}

export async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
) {
  const response = await fetch(url, { method: 'POST', headers, body });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { notJson: text };
  }
  return { status: response.status, headers: response.headers, text, json };
}
