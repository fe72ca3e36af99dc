import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './server';

export interface PubSubEmulator {
  host: string;
  stop(): Promise<void>;
}

/** Why the emulator cannot run here, or undefined when it can. */
export function emulatorUnavailable(): string | undefined {
  const probe = spawnSync('gcloud', ['--version'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error || probe.status !== 0) return 'the Google Cloud CLI (gcloud) is not installed';
  if (!/pubsub-emulator/i.test(probe.stdout))
    return 'the gcloud component pubsub-emulator is not installed';
  const java = spawnSync('java', ['-version'], { encoding: 'utf8', timeout: 30_000 });
  if (java.error || java.status !== 0)
    return 'Java, which the Pub/Sub emulator needs, is not installed';
  return undefined;
}

/**
 * Starts the Google Cloud CLI's Pub/Sub emulator on a free loopback port. gcloud starts Java as its
 * child, so both run in their own process group, and stop() ends that group.
 */
export async function startPubSubEmulator(project = 'test-project'): Promise<PubSubEmulator> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'gcloud',
    [
      'beta',
      'emulators',
      'pubsub',
      'start',
      `--host-port=${host}`,
      `--project=${project}`,
      '--quiet',
    ],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' },
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    process.kill(-child.pid, 'SIGTERM');
    const timer = setTimeout(
      () => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'),
      10_000,
    );
    await exited;
    clearTimeout(timer);
    // Java may outlive the gcloud wrapper for a moment: make sure the whole group is gone.
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the Pub/Sub emulator exited: ${output}`);
    try {
      if ((await fetch(`http://${host}/`)).ok) return { host, stop };
    } catch {
      // still starting
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the Pub/Sub emulator did not start within 60 s: ${output}`);
}
