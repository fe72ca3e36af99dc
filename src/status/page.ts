/**
 * The status page: static HTML with inline CSS and JS, no data in it. The script polls the data
 * endpoints every second and builds every cell with textContent, so no value from a file, an object
 * name or a reason is ever parsed as HTML. `nonce` lets the Content-Security-Policy allow exactly
 * this inline script and style.
 */
export function statusPage(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gcs-bq-ingest: local status</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>gcs-bq-ingest <span>local status</span></h1>
  <p id="state" role="status">connecting…</p>
</header>
<main>
<section>
  <h2>Tables</h2>
  <table id="tables"><thead><tr><th>table</th><th class="n">rows</th><th>columns: BigQuery type (DuckDB type)</th><th></th></tr></thead><tbody></tbody></table>
  <p id="no-tables" class="empty">No tables yet: copy a CSV into a bucket folder.</p>
</section>
<section id="preview" hidden>
  <h2>First 20 rows of <span id="preview-name"></span></h2>
  <div class="scroll"><table id="preview-rows"><thead><tr></tr></thead><tbody></tbody></table></div>
</section>
<section>
  <h2>Latest outcomes</h2>
  <div class="scroll"><table id="outcomes"><thead><tr><th>time</th><th>object</th><th>outcome</th><th>destination</th><th class="n">rows</th><th>job id</th><th>reason</th><th title="a notification of the outcome went out (notify in ingest.yaml)">notified</th></tr></thead><tbody></tbody></table></div>
  <p id="no-outcomes" class="empty">Nothing has happened yet.</p>
</section>
<section>
  <h2>Rejected objects</h2>
  <div class="scroll"><table id="rejected"><thead><tr><th>time</th><th>object</th><th>reason</th><th>quarantined copy</th></tr></thead><tbody></tbody></table></div>
  <p id="no-rejected" class="empty">None.</p>
</section>
</main>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 12px 24px; display: flex; align-items: baseline; gap: 24px; }
h1 { font-size: 18px; margin: 0; } h1 span { font-weight: normal; opacity: .7; }
header p { margin: 0; font-size: 13px; opacity: .85; }
main { padding: 8px 24px 24px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 16px 12px; margin-top: 16px; }
h2 { font-size: 15px; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; color: #57606a; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.mono { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: break-word; }
td.job { word-break: break-all; min-width: 18ch; }
td.reason { max-width: 420px; }
td.notified { color: #1a7f37; }
td.time { white-space: nowrap; }
.scroll { overflow-x: auto; }
.empty { color: #57606a; margin: 4px 0; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; background: #eaeef2; }
.loaded { background: #dafbe1; color: #116329; } .rejected { background: #ffebe9; color: #a40e26; }
.duplicate, .skipped, .queued { background: #eaeef2; color: #57606a; }
button { font: inherit; font-size: 12px; cursor: pointer; }
summary { cursor: pointer; color: #0969da; font-family: system-ui, sans-serif; }
.folded { max-height: 240px; overflow-y: auto; }
`;

// Plain browser JS; every value goes through textContent.
const SCRIPT = `
'use strict';
const byId = (id) => document.getElementById(id);
let version = -1;
let previewed;

function cell(row, value, className) {
  const td = document.createElement('td');
  td.textContent = value === undefined || value === null ? '' : String(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(id, items, render) {
  const body = byId(id).tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement('tr');
    render(row, item);
    body.appendChild(row);
  }
  byId('no-' + id).hidden = items.length > 0;
}

function time(iso) {
  const at = new Date(iso);
  return at.toLocaleDateString() === new Date().toLocaleDateString()
    ? at.toLocaleTimeString() : at.toLocaleString();
}

function badge(row, outcome) {
  const span = document.createElement('span');
  span.className = 'badge ' + outcome;
  span.textContent = outcome;
  cell(row, '').appendChild(span);
}

function rowsOf(o) {
  const replaced = typeof o.replacedRows === 'number' ? ' (replaced ' + o.replacedRows + ')' : '';
  if (o.objectRows !== undefined && o.objectRows !== null) return o.objectRows + replaced;
  if (o.rows === undefined || o.rows === null) return '';
  return (o.jobObjects > 1 ? o.rows + ' (job of ' + o.jobObjects + ' objects)' : o.rows) + replaced;
}

function reasonOf(o) {
  const schema = o.schemaChanges && o.schemaChanges.length > 0
    ? 'schema: ' + o.schemaChanges.join(', ') : '';
  return [schema, o.reason].filter(Boolean).join('; ');
}

async function getJson(path) {
  const answer = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!answer.ok) throw new Error(path + ' answered ' + answer.status);
  return answer.json();
}

// A wide table shows its first columns; the rest fold away, so that its row stays one line high.
const SHOWN_COLUMNS = 8;
const unfolded = new Set();

function columnsCell(row, t) {
  const text = (columns) =>
    columns.map((c) => c.name + ' ' + c.bigQueryType + ' (' + c.type + ')').join(', ');
  const td = cell(row, text(t.columns.slice(0, SHOWN_COLUMNS)), 'mono');
  const rest = t.columns.slice(SHOWN_COLUMNS);
  if (rest.length === 0) return;
  const details = document.createElement('details');
  details.open = unfolded.has(t.table);
  details.addEventListener('toggle', () => {
    if (details.open) unfolded.add(t.table);
    else unfolded.delete(t.table);
  });
  const summary = document.createElement('summary');
  summary.textContent = rest.length.toLocaleString('en-US') + ' more columns';
  const list = document.createElement('div');
  list.className = 'folded';
  list.textContent = text(rest);
  details.append(summary, list);
  td.appendChild(details);
}

function showTables(tables) {
  fill('tables', tables, (row, t) => {
    cell(row, t.table, 'mono');
    cell(row, t.rows, 'n');
    columnsCell(row, t);
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'first 20 rows';
    button.addEventListener('click', () => { previewed = t.table; void showPreview(); });
    cell(row, '').appendChild(button);
  });
}

async function showPreview() {
  if (previewed === undefined) return;
  const preview = await getJson('/status/preview?table=' + encodeURIComponent(previewed));
  byId('preview').hidden = false;
  byId('preview-name').textContent = preview.table;
  const head = byId('preview-rows').tHead.rows[0];
  head.replaceChildren();
  for (const name of preview.columns) {
    const th = document.createElement('th');
    th.textContent = name;
    head.appendChild(th);
  }
  const body = byId('preview-rows').tBodies[0];
  body.replaceChildren();
  for (const values of preview.rows) {
    const row = document.createElement('tr');
    for (const value of values) cell(row, value === null ? 'NULL' : value);
    body.appendChild(row);
  }
}

function showOutcomes(data) {
  fill('outcomes', data.outcomes, (row, o) => {
    cell(row, time(o.at), 'time');
    cell(row, o.uri, 'mono');
    badge(row, o.outcome);
    cell(row, o.destination, 'mono');
    cell(row, rowsOf(o), 'n');
    cell(row, o.jobId, 'mono job');
    cell(row, reasonOf(o), 'reason');
    cell(row, o.notified ? 'notified' : '', 'notified');
  });
  fill('rejected', data.rejected, (row, r) => {
    cell(row, time(r.at), 'time');
    cell(row, r.uri, 'mono');
    cell(row, r.reason, 'reason');
    cell(row, r.quarantined === undefined ? 'no copy' : r.quarantined, 'mono');
  });
}

async function poll() {
  try {
    const data = await getJson('/status/outcomes');
    if (data.version !== version) {
      showOutcomes(data);
      showTables(await getJson('/status/tables'));
      await showPreview();
      version = data.version;
    }
    byId('state').textContent = 'live, checked ' + new Date().toLocaleTimeString();
  } catch (error) {
    byId('state').textContent = 'cannot reach the receiver (' + error.message + '); retrying';
  }
  setTimeout(poll, 1000);
}
void poll();
`;
