import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What the Dockerfile's runtime stage runs: its Node major, its environment, its compile cache. */
export interface ImageRuntime {
  /** The runtime stage's base image, e.g. `node:22.23.3-bookworm-slim`. */
  image: string;
  nodeMajor: number;
  env: Record<string, string>;
  /** The `node …` commands the stage runs once NODE_COMPILE_CACHE is set: its warm-up. */
  warm: string[];
}

/** The runtime stage (the last FROM) of a Dockerfile's text. */
export function parseImage(dockerfile: string): ImageRuntime {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stageAt = lines.findLastIndex((line) => /^FROM\s/i.test(line));
  const image = /^FROM\s+(\S+)/i.exec(lines[stageAt] ?? '')?.[1] ?? '';
  const nodeMajor = Number(/^node:(\d+)/.exec(image)?.[1]);
  if (!Number.isInteger(nodeMajor))
    throw new Error(`the runtime stage is not a node image: ${image}`);
  const env: Record<string, string> = {};
  const warm: string[] = [];
  for (const line of lines.slice(stageAt + 1)) {
    const [op = '', args = ''] = line.split(/\s+(.*)/s);
    if (/^ENV$/i.test(op)) {
      for (const [, key = '', value = ''] of args.matchAll(/(\w+)=("[^"]*"|\S*)/g))
        env[key] = value.replace(/^"|"$/g, '');
    } else if (/^RUN$/i.test(op) && env.NODE_COMPILE_CACHE !== undefined) {
      warm.push(
        ...args
          .split('&&')
          .map((c) => c.trim())
          .filter((c) => c.startsWith('node ')),
      );
    }
  }
  return { image, nodeMajor, env, warm };
}

/**
 * The `node` binary of `major`: this one if it is that major, else npm's `node@<major>` package
 * (fetched once into npm's cache). Undefined when npm cannot provide it.
 */
export function nodeOfMajor(major: number): string | undefined {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  try {
    const args = [
      'exec',
      '--yes',
      `--package=node@${major}`,
      '--',
      'node',
      '-p',
      'process.execPath',
    ];
    const found = execFileSync('npm', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return found.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Warms a compile cache in `dir` as the image's build does: its warm-up commands, run in `source`
 * with the image's environment and this process's `node`.
 */
export function warmCompileCache(runtime: ImageRuntime, source: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const env = {
    ...runtime.env,
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '',
    METADATA_SERVER_DETECTION: 'none',
    GOOGLE_CLOUD_PROJECT: 'bench-project',
    NODE_COMPILE_CACHE: dir,
  };
  for (const command of runtime.warm) {
    execFileSync('sh', ['-c', command], { cwd: source, env, stdio: ['ignore', 'ignore', 'pipe'] });
  }
}
