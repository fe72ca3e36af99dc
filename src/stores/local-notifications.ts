import { appendFile, mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { INGEST_KEY, type NotificationRecord, type SentMessage } from './notified';

/** The name of the local record, in the local data folder. */
export const NOTIFICATIONS_FILE = 'notifications.jsonl';

/** One line of `notifications.jsonl`: a message as it went out. */
export interface NotificationLine {
  topic: string;
  messageId?: string;
  attributes: Record<string, string>;
  data: object;
}

/**
 * The local record: every message that went out is a line of `notifications.jsonl` (its topic, its
 * attributes and its JSON), whether or not an emulator took it; a message is recorded as sent when
 * a line carries its `ingest-key`. One receiver holds a local data folder, so the keys read once at
 * the first use stay true with the lines it appends.
 */
export function createLocalNotifications(file: string): NotificationRecord {
  let read: Promise<{ keys: Set<string>; whole: boolean }> | undefined;
  let appending: Promise<void> = Promise.resolve();
  const known = () => (read ??= readKeys(file));
  return {
    async sent(items) {
      const { keys } = await known();
      return items.map((item) => keys.has(item.key));
    },
    async record(messages) {
      if (messages.length === 0) return;
      const state = await known();
      const lines = messages.map((m) => `${JSON.stringify(toLine(m))}\n`).join('');
      // One append at a time: lines of concurrent requests never interleave.
      const append = appending.then(async () => {
        await mkdir(path.dirname(file), { recursive: true });
        // After a line cut short, start on a line of its own.
        await appendFile(file, state.whole ? lines : `\n${lines}`, 'utf8');
        state.whole = true;
      });
      appending = append.catch(() => undefined);
      await append;
      for (const m of messages) {
        const key = m.attributes[INGEST_KEY];
        if (key !== undefined) state.keys.add(key);
      }
    },
  };
}

function toLine({ topic, messageId, attributes, data }: SentMessage): NotificationLine {
  return messageId === undefined
    ? { topic, attributes, data }
    : { topic, messageId, attributes, data };
}

/**
 * Every line's `ingest-key`, and whether the file ends with a whole line. A line cut short by a
 * crash is left out: its message goes out again.
 */
export async function readKeys(file: string): Promise<{ keys: Set<string>; whole: boolean }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { keys: new Set(), whole: true };
    throw error;
  }
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    const key = keyOf(line);
    if (key !== undefined) keys.add(key);
  }
  return { keys, whole: text === '' || text.endsWith('\n') };
}

function keyOf(line: string): string | undefined {
  if (line.trim() === '') return undefined;
  try {
    const parsed = JSON.parse(line) as Partial<NotificationLine> | null;
    const key = parsed?.attributes?.[INGEST_KEY];
    return typeof key === 'string' ? key : undefined;
  } catch {
    return undefined;
  }
}
