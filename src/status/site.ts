import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Pages } from '../receiver/app';
import type { Backend } from '../receiver/backend';
import type { Config } from '../config';
import { errorMessage } from '../core/errors';
import { createOutcomeLog } from './outcomes';
import { statusPage } from './page';
import { mergeRejected, readQuarantine, type RejectedRow } from './rejected';

const LATEST = 100;
const PREVIEW_ROWS = 20;

/**
 * The local backend's status page (`GET /` asking for HTML) and the JSON it polls:
 * `/status/outcomes`, `/status/tables`, `/status/preview?table=dataset.table`.
 */
export function createStatusSite(options: {
  config: Config;
  backend: () => Promise<Backend>;
  /** Quarantine paths are shown relative to this folder. */
  cwd: string;
}): Pages {
  const { config, backend, cwd } = options;
  const log = createOutcomeLog(LATEST);
  const run = randomBytes(4).toString('hex'); // a restarted receiver is a new version
  let seeded = false;

  async function inspector() {
    const { inspector } = await backend();
    if (!inspector) throw new Error('the status page needs the local backend');
    return inspector;
  }

  /** Once: what the ledger recorded before this process started. */
  async function seed(): Promise<void> {
    if (seeded) return;
    log.seed(await (await inspector()).history(new Date(0), LATEST));
    seeded = true;
  }

  /** Read again only after an outcome: the ledger and the quarantine change with outcomes. */
  let rejected: { version: number; rows: Promise<RejectedRow[]> } | undefined;
  async function rejectedObjects(): Promise<RejectedRow[]> {
    const version = log.version();
    if (rejected?.version !== version) {
      const rows = (async () => {
        const { inspector, store } = await backend();
        const [ledger, copies] = await Promise.all([
          inspector?.history(new Date(0), LATEST, true) ?? [],
          readQuarantine(store, config.localDataDir, config.quarantinePrefix, cwd),
        ]);
        return mergeRejected(log.list(), ledger, copies, LATEST);
      })();
      rejected = { version, rows };
      rows.catch(() => {
        if (rejected?.rows === rows) rejected = undefined; // read again on the next poll
      });
    }
    return rejected.rows;
  }

  async function outcomes() {
    await seed();
    const rows = log.list();
    return {
      version: `${run}.${log.version()}`,
      outcomes: rows,
      rejected: await rejectedObjects(),
    };
  }

  async function answer(route: string, query: URLSearchParams): Promise<[number, unknown]> {
    if (route === '/status/outcomes') return [200, await outcomes()];
    if (route === '/status/tables') return [200, await (await inspector()).tables()];
    const table = query.get('table') ?? '';
    const preview = await (await inspector()).preview(table, PREVIEW_ROWS);
    return preview ? [200, preview] : [404, { error: `table ${table}: not found` }];
  }

  return {
    record: (result) => log.record(result),
    async serve(req, res) {
      if (req.method !== 'GET') return false;
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/' && /\btext\/html\b/.test(req.headers.accept ?? '')) {
        sendPage(res);
        return true;
      }
      if (!['/status/outcomes', '/status/tables', '/status/preview'].includes(url.pathname))
        return false;
      try {
        const [status, body] = await answer(url.pathname, url.searchParams);
        sendJson(res, status, body);
      } catch (error) {
        sendJson(res, 503, { error: errorMessage(error), retryable: true });
      }
      return true;
    },
  };
}

function sendPage(res: ServerResponse): void {
  const nonce = randomBytes(16).toString('base64');
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader(
    'Content-Security-Policy',
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.end(statusPage(nonce));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(body));
}
