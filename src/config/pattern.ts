/**
 * Route patterns: `{name}` captures one path segment, `*` matches within a segment,
 * `**` (a whole segment) matches any number of segments. A `.csv` or `.csv.gz` ending matches in
 * any case, as the check for CSV objects does; the rest is case-sensitive, as object names are.
 */
export interface CompiledPattern {
  regex: RegExp;
  names: string[];
}

const PLACEHOLDER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CSV_ENDING = /\.csv(\.gz)?$/i;

export function compilePattern(pattern: string): CompiledPattern {
  if (pattern.startsWith('/')) throw new Error('must be relative to the bucket (no leading "/")');
  const names: string[] = [];
  const segments = pattern.split('/');
  let source = '^';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') {
      source += last ? '.*' : '(?:[^/]+/)*';
      return;
    }
    if (segment === '') throw new Error('has an empty path segment');
    const ending = last ? (CSV_ENDING.exec(segment)?.[0] ?? '') : '';
    const rest = segment.slice(0, segment.length - ending.length);
    source += compileSegment(rest, names) + anyCase(ending) + (last ? '' : '/');
  });
  return { regex: new RegExp(source + '$', 'u'), names };
}

function compileSegment(segment: string, names: string[]): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '{') {
      const end = segment.indexOf('}', i);
      if (end < 0) throw new Error(`has an unclosed "{" in "${segment}"`);
      const name = segment.slice(i + 1, end);
      if (!PLACEHOLDER.test(name)) throw new Error(`has an invalid placeholder "{${name}}"`);
      if (names.includes(name)) throw new Error(`captures {${name}} twice`);
      names.push(name);
      out += `(?<${name}>[^/]+?)`;
      i = end;
    } else if (c === '*') {
      if (segment[i + 1] === '*')
        throw new Error('uses "**" inside a segment; it must stand alone between "/"');
      out += '[^/]*';
    } else if (c === '}') {
      throw new Error(`has an unmatched "}" in "${segment}"`);
    } else {
      out += c.replace(/[.+?^$()|[\]\\]/g, '\\$&');
    }
  }
  return out;
}

/** `.csv` -> `\.[cC][sS][vV]` */
function anyCase(text: string): string {
  return [...text]
    .map((c) => (c === '.' ? '\\.' : `[${c.toLowerCase()}${c.toUpperCase()}]`))
    .join('');
}

/** The captured placeholders when `name` matches, else undefined. */
export function matchPattern(
  pattern: CompiledPattern,
  name: string,
): Record<string, string> | undefined {
  const m = pattern.regex.exec(name);
  if (!m) return undefined;
  return { ...(m.groups ?? {}) };
}
