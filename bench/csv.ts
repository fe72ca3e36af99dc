import * as fs from 'node:fs';

export const HEADER = 'id,customer,amount,quantity,active,order_date,created_at,ratio,note\n';

/** A small deterministic PRNG (mulberry32), so every run loads the same data. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Tyrell'];
const WORDS = ['rush', 'gift', 'fragile', 'repeat', 'bulk', 'late', 'promo', 'return'];

/**
 * One row of mixed types: integers, decimals, booleans, dates, timestamps, doubles, and quoted text
 * with commas, doubled quotes and (rarely) an empty value.
 */
export function row(id: number, next: () => number): string {
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)] as T;
  const day = 1 + Math.floor(next() * 28);
  const month = 1 + Math.floor(next() * 12);
  const date = `2026-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
  const time = `${String(Math.floor(next() * 24)).padStart(2, '0')}:${String(Math.floor(next() * 60)).padStart(2, '0')}:${String(Math.floor(next() * 60)).padStart(2, '0')}`;
  const customer = `"${pick(NAMES)}, ${pick(['Inc.', 'Ltd', 'GmbH', '"The" Co'.replaceAll('"', '""')])}"`;
  const note =
    next() < 0.1
      ? ''
      : `"${pick(WORDS)}, ${pick(WORDS)} ""${pick(WORDS)}"" ${Math.floor(next() * 1e6)}"`;
  return [
    id,
    customer,
    (next() * 10_000).toFixed(2),
    Math.floor(next() * 100),
    next() < 0.5 ? 'true' : 'false',
    date,
    `${date} ${time}`,
    next().toPrecision(8),
    note,
  ].join(',');
}

/** Writes a CSV of at least `bytes` bytes (whole rows) and returns its row count. */
export function writeCsv(file: string, bytes: number, seed = 1, firstId = 1): number {
  const next = random(seed);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, HEADER);
    let written = HEADER.length;
    let id = firstId;
    while (written < bytes) {
      const lines: string[] = [];
      let chunk = 0;
      while (chunk < 1024 * 1024 && written + chunk < bytes) {
        const line = `${row(id++, next)}\n`;
        lines.push(line);
        chunk += line.length;
      }
      fs.writeSync(fd, lines.join(''));
      written += chunk;
    }
    return id - firstId;
  } finally {
    fs.closeSync(fd);
  }
}
