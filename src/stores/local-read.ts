import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { generationOf } from './local-metadata';
import { isGone, lstatInside, resolveObject, type ObjectPath } from './local-paths';
import { ObjectGoneError, gsUri, type StoredObject } from './store';

const { O_RDONLY, O_NOFOLLOW } = constants;

/**
 * Opens exactly this generation of the object without following symlinks. The path is checked again
 * after opening, so a folder swapped for a symlink in between is noticed.
 */
export async function openGeneration(
  target: ObjectPath,
  generation: string,
): Promise<{ handle: FileHandle; size: number }> {
  const gone = () => new ObjectGoneError(`${gsUri(target)}#${generation} no longer exists`);
  if (!lstatInside(target)?.isFile()) throw gone();
  let handle: FileHandle;
  try {
    handle = await fs.open(target.file, O_RDONLY | O_NOFOLLOW);
  } catch (error) {
    if (isGone(error)) throw gone();
    throw error;
  }
  const opened = await handle.stat({ bigint: true });
  const after = lstatInside(target);
  const same = after !== undefined && after.ino === opened.ino && after.dev === opened.dev;
  if (!same || !opened.isFile() || generationOf(opened) !== generation) {
    await handle.close();
    throw gone();
  }
  return { handle, size: Number(opened.size) };
}

/** Throws ObjectGoneError when the file was rewritten in place while it was being read. */
export async function checkUnchanged(handle: FileHandle, object: StoredObject): Promise<void> {
  if (generationOf(await handle.stat({ bigint: true })) !== object.generation) {
    throw new ObjectGoneError(`${gsUri(object)}#${object.generation} changed while it was read`);
  }
}

export async function readHead(
  base: string,
  object: StoredObject,
  maxBytes: number,
): Promise<Buffer> {
  const target = resolveObject(base, object.bucket, object.name);
  const { handle, size } = await openGeneration(target, object.generation);
  try {
    const buffer = Buffer.alloc(Math.max(0, Math.min(maxBytes, size)));
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    await checkUnchanged(handle, object);
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
