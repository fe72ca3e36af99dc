import * as fs from 'node:fs';

/** Writes a CSV of mixed types and quoted fields of about `bytes` bytes; returns its data row count. */
export async function writeLargeCsv(file: string, bytes: number): Promise<number> {
  const out = fs.createWriteStream(file);
  out.write('id,name,amount,day,note\n');
  let written = 0;
  let rows = 0;
  while (written < bytes) {
    let chunk = '';
    for (let i = 0; i < 10_000; i++, rows++) {
      chunk += `${rows},name ${rows},${(rows * 1.5).toFixed(2)},2026-01-${String(1 + (rows % 28)).padStart(2, '0')},"quoted, ""text"" ${rows}"\n`;
    }
    written += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  return rows;
}
