import { Alias, isPair, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ConfigError, errorMessage, firstLine } from '../core/errors';

/** YAML text -> plain data; a syntax error is one line naming the file, the line and the column. */
export function parseYamlText(file: string, text: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `line ${line}, column ${col}`;
  };
  const syntax = doc.errors[0];
  if (syntax) throw new ConfigError(file, at(syntax.pos[0]), firstLine(syntax.message));
  const alias = unresolvedAlias(doc);
  if (alias) {
    const written = `*${alias.node.source}`;
    const quoted = `'${written.replace(/'/g, "''")}'`;
    const hint = alias.key === undefined ? quoted : `${alias.key}: ${quoted}`;
    const problem = `"${written}" starts with "*", which YAML reads as an alias: quote it: ${hint}`;
    throw new ConfigError(file, at(alias.node.range?.[0] ?? 0), problem);
  }
  try {
    return doc.toJS();
  } catch (error) {
    throw new ConfigError(file, '(yaml)', firstLine(errorMessage(error)));
  }
}

/** The first alias whose anchor is not defined before it (an unquoted `*.csv`), and its key. */
function unresolvedAlias(doc: Document): { node: Alias; key?: string } | undefined {
  let found: { node: Alias; key?: string } | undefined;
  visit(doc, {
    Alias(_, node, path) {
      if (node.resolve(doc) !== undefined) return undefined;
      const parent = path[path.length - 1];
      const key = isPair(parent) && isScalar(parent.key) ? String(parent.key.value) : undefined;
      found = { node, key };
      return visit.BREAK;
    },
  });
  return found;
}
