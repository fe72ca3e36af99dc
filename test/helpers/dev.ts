import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './cli';

/** `gcs-bq-ingest dev` as a user runs it, reading its output line by line. */
export class Dev {
  readonly lines: string[] = [];
  readonly process: ChildProcess;
  private waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  constructor(cwd: string, env: Record<string, string>) {
    this.process = spawn(process.execPath, [CLI, 'dev'], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) =>
          w.pattern.test(line) ? (w.resolve(line), false) : true,
        );
      }
    };
    this.process.stdout?.on('data', onData);
    this.process.stderr?.on('data', onData);
  }

  waitFor(pattern: RegExp, ms = 15_000): Promise<string> {
    const seen = this.lines.find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line matching ${pattern} in:\n${this.lines.join('\n')}`)),
        ms,
      );
      this.waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGTERM');
    await exited;
  }
}
