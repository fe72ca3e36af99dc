import * as fs from 'node:fs';
import * as path from 'node:path';
import { createStore } from '../receiver/backend';
import { loadConfig, type Config } from '../config';
import { generationProblem } from '../stores/local';
import type { StoredObject } from '../stores/store';

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfig(env, (file) => fs.readFileSync(file, 'utf8'));
}

/** `<LOCAL_DATA_DIR>/buckets/<bucket>/<name>` -> bucket and name; a path outside the buckets is an error. */
export function localObjectName(dataDir: string, file: string): { bucket: string; name: string } {
  const buckets = path.resolve(dataDir, 'buckets');
  const relative = path.relative(buckets, path.resolve(file));
  const [bucket, ...rest] = relative.split(path.sep);
  if (relative.startsWith('..') || path.isAbsolute(relative) || !bucket || rest.length === 0) {
    throw new Error(`${file} is not inside ${buckets}/<bucket>/`);
  }
  return { bucket, name: rest.join('/') };
}

/** What the receiver needs to know about an object, from whichever store the backend names. */
export async function statObject(
  config: Config,
  bucket: string,
  name: string,
): Promise<StoredObject> {
  const object = await (await createStore(config)).stat(bucket, name);
  if (!object)
    throw new Error(`gs://${bucket}/${name} does not exist in the ${config.backend} store`);
  const problem = config.backend === 'local' ? generationProblem(object) : undefined;
  if (problem) throw new Error(`gs://${bucket}/${name}: ${problem}`);
  return object;
}

export function defaultUrl(env: NodeJS.ProcessEnv = process.env): string {
  return `http://localhost:${env.PORT ?? '8080'}/`;
}
