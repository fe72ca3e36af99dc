import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// Every relative link between README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md (and to the
// other files they name) resolves, and every #anchor names a heading of its file, as GitHub makes
// anchors of headings.

const ROOT = path.resolve(__dirname, '..', '..');

/** The documentation's Markdown files, relative to `root`. */
function markdownFiles(root: string): string[] {
  const docs = fs.existsSync(path.join(root, 'docs'))
    ? fs
        .readdirSync(path.join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .sort()
        .map((name) => `docs/${name}`)
    : [];
  return ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md', ...docs].filter((file) =>
    fs.existsSync(path.join(root, file)),
  );
}

/** The text with fenced code blocks blanked, line for line. */
function withoutFences(text: string): string {
  let fence: { char: string; length: number } | undefined;
  return text
    .split('\n')
    .map((line) => {
      const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
      if (fence) {
        if (marker && marker[0] === fence.char && marker.length >= fence.length) fence = undefined;
        return '';
      }
      if (marker) {
        fence = { char: marker[0] as string, length: marker.length };
        return '';
      }
      return line;
    })
    .join('\n');
}

/** Code spans (which may run over a line break) blanked, keeping every line break. */
function withoutCodeSpans(text: string): string {
  return text.replace(/(`+)(?!`)(?:(?!\n\n)[\s\S])*?(?<!`)\1(?!`)/g, (span) =>
    span.replace(/[^\n]/g, ' '),
  );
}

/**
 * GitHub's anchor for a heading: its text as rendered (code marks and link targets dropped), lower
 * case, every character but letters, digits, marks, `_`, `-` and spaces removed, each space a `-`.
 */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .trim();
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown text's headings; a repeated one gets -1, -2, … as on GitHub. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of withoutFences(text).split('\n')) {
    const heading = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

/** Every link and image target of a Markdown text, with its line: inline and reference definitions. */
function links(text: string): { target: string; line: number }[] {
  const prose = withoutCodeSpans(withoutFences(text));
  const lineOf = (index: number) => prose.slice(0, index).split('\n').length;
  const found: { target: string; line: number }[] = [];
  const inline =
    /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
  for (const m of prose.matchAll(inline)) {
    found.push({ target: (m[1] ?? '').replace(/^<|>$/g, ''), line: lineOf(m.index) });
  }
  for (const m of prose.matchAll(/^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)/gm)) {
    found.push({ target: (m[1] ?? '').replace(/^<|>$/g, ''), line: lineOf(m.index) });
  }
  return found;
}

/** Each link of the documentation under `root` that does not resolve: `file:line: target: why`. */
function brokenLinks(root: string): string[] {
  const problems: string[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  const anchorsIn = (file: string) => {
    let set = anchorsOf.get(file);
    if (!set) anchorsOf.set(file, (set = anchors(fs.readFileSync(file, 'utf8'))));
    return set;
  };
  for (const file of markdownFiles(root)) {
    const source = path.join(root, file);
    for (const { target, line } of links(fs.readFileSync(source, 'utf8'))) {
      const problem = (why: string) => problems.push(`${file}:${line}: ${target}: ${why}`);
      if (target === '') {
        problem('empty link');
        continue;
      }
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      const hash = target.indexOf('#');
      const linked = hash < 0 ? target : target.slice(0, hash);
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const resolved =
        linked === '' ? source : path.resolve(path.dirname(source), decodeURI(linked));
      const relative = path.relative(root, resolved).split(path.sep).join('/');
      if (relative.startsWith('..') || path.isAbsolute(relative)) {
        problem('points outside the repository');
        continue;
      }
      if (!fs.existsSync(resolved)) {
        problem(`no such file: ${relative}`);
        continue;
      }
      if (anchor === undefined || !resolved.endsWith('.md')) continue;
      if (!anchorsIn(resolved).has(anchor)) problem(`no heading #${anchor} in ${relative}`);
    }
  }
  return problems;
}

describe('links in the documentation', () => {
  it('finds the links between the documentation files', () => {
    const between = markdownFiles(ROOT).flatMap((file) =>
      links(fs.readFileSync(path.join(ROOT, file), 'utf8')).filter(({ target }) =>
        /(^|\/)(README|CONTRIBUTING|CHANGELOG|[a-z-]+)\.md(#|$)|^#/.test(target),
      ),
    );
    expect(markdownFiles(ROOT)).to.include.members([
      'README.md',
      'CONTRIBUTING.md',
      'CHANGELOG.md',
    ]);
    expect(between.length).to.be.greaterThan(20);
  });

  it('every relative link resolves to a file and every #anchor to a heading of it', () => {
    const problems = brokenLinks(ROOT);
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it('makes anchors as GitHub does', () => {
    expect(slug('Coalesced loads (`batch`)')).to.equal('coalesced-loads-batch');
    expect(slug('`ingest.yaml`')).to.equal('ingestyaml');
    expect(slug('1. Enable the APIs')).to.equal('1-enable-the-apis');
    expect(slug('Local backend and BigQuery: where they differ')).to.equal(
      'local-backend-and-bigquery-where-they-differ',
    );
    expect(slug('What it calls, and the roles its service account needs')).to.equal(
      'what-it-calls-and-the-roles-its-service-account-needs',
    );
    expect(slug('[Unreleased]')).to.equal('unreleased');
    expect(slug('Exactly once — as BigQuery sees it')).to.equal(
      'exactly-once--as-bigquery-sees-it',
    );
    expect([...anchors('# A\n\n```\n# not a heading\n```\n\n## A\n### b_c\n')]).to.deep.equal([
      'a',
      'a-1',
      'b_c',
    ]);
  });

  it('reports a missing file, a missing heading and a link out of the repository', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'docs-links-'));
    try {
      fs.mkdirSync(path.join(root, 'docs'));
      fs.writeFileSync(path.join(root, 'docs', 'a.md'), '# A\n\n## Second part\n');
      fs.writeFileSync(
        path.join(root, 'README.md'),
        [
          '# Title',
          '',
          'Fine: [a](docs/a.md), [part](docs/a.md#second-part), [here](#title), [web](https://example.com).',
          'Broken: [b](docs/b.md), [part](docs/a.md#third-part),',
          '[here](#nowhere) and [up](../outside.md).',
          '',
          'Not links: `[x](docs/none.md)` and',
          '',
          '```',
          '[y](docs/none.md)',
          '```',
          '',
        ].join('\n'),
      );
      expect(brokenLinks(root)).to.deep.equal([
        'README.md:4: docs/b.md: no such file: docs/b.md',
        'README.md:4: docs/a.md#third-part: no heading #third-part in docs/a.md',
        'README.md:5: #nowhere: no heading #nowhere in README.md',
        'README.md:5: ../outside.md: points outside the repository',
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
