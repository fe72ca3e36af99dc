import {
  constants,
  lstatSync,
  promises as fs,
  readFileSync,
  type BigIntStats,
  type Dirent,
} from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { RequestError } from '../errors';
import {
  BucketNotFoundError,
  ObjectGoneError,
  UnsupportedNameError,
  gsUri,
  type ObjectStore,
  type StoredObject,
} from './store';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const METADATA_SUFFIX = '.metadata.json';
const COPY_CHUNK = 64 * 1024;

/**
 * A folder standing in for Cloud Storage: objects live at `<root>/buckets/<bucket>/<name>`, and an
 * object's generation is its mtime in microseconds. Nothing outside `<root>/buckets/<bucket>/` is
 * ever read or written, and symbolic links are never followed.
 */
export function createLocalStore(
  root: string,
  options: { onSymlink?: (file: string) => void } = {},
): ObjectStore {
  if (root === '') throw new Error('local store: root folder must not be empty');
  const base = path.resolve(root);
  return {
    stat: (bucket, name) => statObject(base, bucket, name),
    readHead: (object, maxBytes) => readHead(base, object, maxBytes),
    list: (bucket, prefix) => listObjects(base, bucket, prefix, options.onSymlink),
    copyTo: (object, targetName, metadata) => copyObject(base, object, targetName, metadata),
  };
}

/** The file of an object, checked to stay inside its bucket folder (it may not exist). */
export function localObjectPath(root: string, bucket: string, name: string): string {
  return resolveObject(path.resolve(root), bucket, name).file;
}

interface ObjectPath {
  bucket: string;
  name: string;
  bucketDir: string;
  segments: string[];
  file: string;
}

function bucketDir(base: string, bucket: string): string {
  if (bucket === '' || bucket === '.' || bucket === '..' || /[/\\\0]/.test(bucket)) {
    throw new Error(`local store: bucket "${bucket}" is not a folder name inside ${base}`);
  }
  return path.join(base, 'buckets', bucket);
}

/**
 * The file of an object. A name with a ".." segment escapes its bucket folder: a RequestError (400).
 * Another name whose file would not be exactly its own inside the bucket folder (an empty or "."
 * segment, a NUL, the platform's other separator) throws UnsupportedNameError: a folder cannot hold
 * such an object, and its path is never used.
 */
function resolveObject(base: string, bucket: string, name: string): ObjectPath {
  const dir = bucketDir(base, bucket);
  const segments = name.split('/');
  const file = path.join(dir, ...segments);
  // A trailing "/" is a folder placeholder's: a folder, so no object.
  const unfit = segments.some(
    (s, i) =>
      (s === '' && i < segments.length - 1) ||
      s === '.' ||
      s === '..' ||
      s.includes('\0') ||
      s.includes(path.sep),
  );
  if (segments.includes('..') || !file.startsWith(dir + path.sep)) {
    throw new RequestError(
      `object name "${name}" escapes its bucket: a ".." path segment would leave the local folder of bucket ${bucket}`,
    );
  }
  if (unfit) {
    throw new UnsupportedNameError(
      `object name "${name}" cannot be a file inside the local folder of bucket ${bucket} (an empty, "." or ".." path segment, or a NUL); Cloud Storage can hold it, the local backend cannot`,
    );
  }
  return { bucket, name, bucketDir: dir, segments, file };
}

// Stats and the small metadata file are read synchronously: on a local disk they take microseconds,
// far less than a round trip through the thread pool, and a redelivered event is mostly these.
function lstatOrUndefined(file: string): BigIntStats | undefined {
  try {
    return lstatSync(file, { bigint: true, throwIfNoEntry: false });
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/** lstat of the object, or undefined when it or any folder on its way is missing or a symlink. */
function lstatInside(target: ObjectPath): BigIntStats | undefined {
  let current = target.bucketDir;
  let stats = lstatOrUndefined(current);
  for (const segment of target.segments) {
    if (!stats?.isDirectory()) return undefined;
    current = path.join(current, segment);
    stats = lstatOrUndefined(current);
  }
  return stats?.isSymbolicLink() ? undefined : stats;
}

/**
 * Why a file cannot be an object, or undefined: Cloud Storage generations are positive, and a local
 * object's is its mtime, so a file dated 1970-01-01 00:00 UTC or earlier has none.
 */
export function generationProblem(object: StoredObject): string | undefined {
  if (/^[1-9][0-9]*$/.test(object.generation)) return undefined;
  const modified = new Date(Number(BigInt(object.generation) / 1000n)).toISOString();
  return `its modification time (${modified}) is not after 1970, and the local store takes an object's generation from it: give it the current time (touch it, or copy it again) to load it`;
}

/** A file's generation: its mtime in microseconds. */
export function generationOf(stats: BigIntStats): string {
  return (stats.mtimeNs / 1000n).toString();
}

function toStored(bucket: string, name: string, stats: BigIntStats): StoredObject {
  return { bucket, name, generation: generationOf(stats), size: Number(stats.size) };
}

/** The object with the custom metadata copyTo left beside it, if any. */
function withMetadata(object: StoredObject, file: string): StoredObject {
  const sidecar = `${file}${METADATA_SUFFIX}`;
  if (!lstatOrUndefined(sidecar)) return object;
  let text: string;
  try {
    text = readFileSync(sidecar, 'utf8');
  } catch (error) {
    if (isGone(error)) return object;
    throw error;
  }
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null) return object;
  const metadata = Object.fromEntries(
    Object.entries(parsed).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
  return { ...object, metadata };
}

async function statObject(
  base: string,
  bucket: string,
  name: string,
): Promise<StoredObject | undefined> {
  const target = resolveObject(base, bucket, name);
  const stats = lstatInside(target);
  return stats?.isFile() ? withMetadata(toStored(bucket, name, stats), target.file) : undefined;
}

/**
 * Opens exactly this generation of the object without following symlinks. The path is checked again
 * after opening, so a folder swapped for a symlink in between is noticed.
 */
async function openGeneration(
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
async function checkUnchanged(handle: FileHandle, object: StoredObject): Promise<void> {
  if (generationOf(await handle.stat({ bigint: true })) !== object.generation) {
    throw new ObjectGoneError(`${gsUri(object)}#${object.generation} changed while it was read`);
  }
}

async function readHead(base: string, object: StoredObject, maxBytes: number): Promise<Buffer> {
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

async function* listObjects(
  base: string,
  bucket: string,
  prefix: string,
  onSymlink?: (file: string) => void,
): AsyncGenerator<StoredObject> {
  if (prefix.includes('\0')) throw new Error(`local store: prefix "${prefix}" contains a NUL byte`);
  const dir = bucketDir(base, bucket);
  if (!lstatOrUndefined(dir)?.isDirectory()) {
    throw new BucketNotFoundError(`bucket ${bucket} does not exist (no folder ${dir})`);
  }
  yield* walk({ bucket, prefix, onSymlink }, dir, '');
}

interface Walk {
  bucket: string;
  prefix: string;
  /** Told of each symbolic link passed over (links are never followed). */
  onSymlink?: (file: string) => void;
}

/**
 * Yields the files under `dir` in Cloud Storage name order: a folder sorts as its name plus "/", so
 * "a-b" < "a/x" < "a0" as byte-wise name comparison has it. One folder is read at a time.
 */
async function* walk(what: Walk, dir: string, relative: string): AsyncGenerator<StoredObject> {
  const { bucket, prefix } = what;
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isGone(error)) return;
    throw error;
  }
  const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
  for (const link of entries.filter((e) => e.isSymbolicLink()))
    what.onSymlink?.(path.join(dir, link.name));
  const keyed = entries
    // Dirent types come from lstat: symlinks, sockets and the like are neither files nor folders.
    .filter((e) => e.isDirectory() || (e.isFile() && !isMetadataSidecar(e.name, files)))
    .map((entry) => ({
      entry,
      key: Buffer.from(relative + entry.name + (entry.isDirectory() ? '/' : '')),
    }))
    .sort((a, b) => Buffer.compare(a.key, b.key));
  for (const { entry } of keyed) {
    const name = relative + entry.name;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const folder = `${name}/`;
      const wanted = folder.startsWith(prefix) || prefix.startsWith(folder);
      if (wanted && lstatOrUndefined(file)?.isDirectory()) yield* walk(what, file, folder);
    } else if (name.startsWith(prefix)) {
      const stats = lstatOrUndefined(file);
      if (!stats?.isFile()) continue;
      const object = toStored(bucket, name, stats);
      yield files.has(entry.name + METADATA_SUFFIX) ? withMetadata(object, file) : object;
    }
  }
}

/** copyTo's `<name>.metadata.json` next to `<name>` stands for object metadata, not an object. */
function isMetadataSidecar(name: string, files: Set<string>): boolean {
  return name.endsWith(METADATA_SUFFIX) && files.has(name.slice(0, -METADATA_SUFFIX.length));
}

async function copyObject(
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

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}
