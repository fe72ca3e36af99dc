import * as fs from 'node:fs';
import { setImmediate as yieldToEvents } from 'node:timers/promises';

const O_ACCMODE = 0o3; // O_WRONLY = 1, O_RDWR = 2

/** Linux shows every process's open files under /proc; elsewhere writers cannot be seen. */
export function canSeeWriters(): boolean {
  try {
    fs.readdirSync('/proc/self/fdinfo');
    return true;
  } catch {
    return false;
  }
}

/**
 * Which of `files` some process has open for writing: reads each process's fd links under /proc
 * and, for a link to one of the files, its fdinfo flags. Processes this user may not inspect are
 * not seen. Yields between processes so that a busy machine does not stall the event loop.
 */
export async function openForWriting(files: ReadonlySet<string>): Promise<Set<string>> {
  const wanted = new Map<string, string>();
  for (const file of files) wanted.set(realPath(file), file);
  const open = new Set<string>();
  for (const pid of readdir('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    for (const fd of readdir(`/proc/${pid}/fd`)) {
      const file = wanted.get(readlink(`/proc/${pid}/fd/${fd}`));
      if (file !== undefined && isWriteFlags(readFdInfo(`/proc/${pid}/fdinfo/${fd}`))) {
        open.add(file);
      }
    }
    await yieldToEvents();
  }
  return open;
}

/** `flags:` of /proc/<pid>/fdinfo/<fd> (octal) -> whether the descriptor may write. */
export function isWriteFlags(fdinfo: string): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(fdinfo)?.[1];
  return flags !== undefined && (parseInt(flags, 8) & O_ACCMODE) !== 0;
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return []; // the process ended, or belongs to another user
  }
}

function readlink(link: string): string {
  try {
    return fs.readlinkSync(link);
  } catch {
    return '';
  }
}

function readFdInfo(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function realPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}
