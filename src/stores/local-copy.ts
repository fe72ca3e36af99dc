import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { METADATA_SUFFIX } from './local-metadata';
import { lstatOrUndefined, resolveObject, type ObjectPath } from './local-paths';
import { checkUnchanged, openGeneration } from './local-read';
import type { StoredObject } from './store';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const COPY_CHUNK = 64 * 1024;

export async function copyObject(
  base: string,
  object: StoredObject,
  targetName: string,
  metadata: Record<string, string>,
): Promise<void> {
  const source = resolveObject(base, object.bucket, object.name);
  const target = resolveObject(base, object.bucket, targetName);
  const { handle } = await openGeneration(source, object.generation);
  try {
    await makeFolders(target);
    await writeAtomically(target.file, async (out) => {
      await copyHandle(handle, out);
      await checkUnchanged(handle, object);
    });
    await writeAtomically(`${target.file}${METADATA_SUFFIX}`, async (out) => {
      await out.writeFile(`${JSON.stringify(metadata, null, 2)}\n`);
    });
  } finally {
    await handle.close();
  }
}

/** Creates the folders leading to `target`, refusing to pass through a symlink or a file. */
async function makeFolders(target: ObjectPath): Promise<void> {
  let current = target.bucketDir;
  for (const segment of target.segments.slice(0, -1)) {
    current = path.join(current, segment);
    let stats = lstatOrUndefined(current);
    if (!stats) {
      await fs.mkdir(current).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      });
      stats = lstatOrUndefined(current);
    }
    if (!stats?.isDirectory()) {
      throw new Error(`local store: cannot write "${target.name}": ${current} is not a folder`);
    }
  }
}

/** Writes a new file next to `file` and renames it over `file`; rename never follows a symlink. */
async function writeAtomically(
  file: string,
  write: (out: FileHandle) => Promise<void>,
): Promise<void> {
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const out = await fs.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  try {
    await write(out);
    await out.close();
    await fs.rename(temporary, file);
  } catch (error) {
    await out.close().catch(() => undefined); // already closed when the rename failed
    await fs.rm(temporary, { force: true });
    throw error;
  }
}

async function copyHandle(from: FileHandle, to: FileHandle): Promise<void> {
  const buffer = Buffer.alloc(COPY_CHUNK);
  for (let position = 0; ;) {
    const { bytesRead } = await from.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return;
    await to.write(buffer, 0, bytesRead);
    position += bytesRead;
  }
}
