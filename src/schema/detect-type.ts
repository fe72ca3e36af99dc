/** The type a new column gets from its values: the narrowest that reads them all, else STRING. */
export function detectType(values: string[]): string {
  const present = values.filter((v) => v !== '');
  if (present.length === 0) return 'STRING';
  for (const [type, pattern] of DETECTED) {
    if (present.every((v) => pattern.test(v))) return type;
  }
  return 'STRING';
}

const DETECTED: [string, RegExp][] = [
  ['INT64', /^[+-]?\d{1,18}$/],
  ['FLOAT64', /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/],
  ['BOOL', /^(true|false)$/i],
  ['DATE', /^\d{4}-\d{2}-\d{2}$/],
  ['TIMESTAMP', /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$/],
];
