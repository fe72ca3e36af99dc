import { CRC32C, Storage, type StorageOptions } from '@google-cloud/storage';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal Cloud Storage JSON API server for tests and benchmarks: just what @google-cloud/storage 7
 * calls to stat, read (ranged), list, upload, delete and rewrite objects, answering as GCS does
 * (object resources with string generations and sizes, JSON error bodies, 404 for a gone generation).
 * The client reaches it through STORAGE_EMULATOR_HOST, which makes it drop the `/storage/v1` prefix,
 * or through `apiEndpoint`, which keeps it: both forms are accepted.
 */

export interface RecordedRequest {
  method: string;
  /** Decoded path without the `/storage/v1` or `/bigquery/v2` prefix. */
  path: string;
  /** The same, still percent-encoded (object names keep their `%2F`). */
  rawPath: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** When the server received it (epoch ms). */
  at: number;
  /** The parsed JSON body, when there was one. */
  body?: unknown;
}

/** What a request matched by a fault gets instead of its normal answer. */
export interface Fault {
  /** How many matching requests fail; default 1. */
  times?: number;
  match?: (request: RecordedRequest) => boolean;
  /** Answer with this status and a Google-style error body. */
  status?: number;
  /** The `reason` in the error body; default derived from the status. */
  reason?: string;
  message?: string;
  /** Destroy the connection without an answer (ECONNRESET for the client). */
  reset?: boolean;
  /** Wait this long first; alone, the request is then answered normally. */
  delayMs?: number;
  /** Handle the request, then destroy the connection instead of answering: the answer is lost. */
  loseAnswer?: boolean;
  /** Never answer: the connection stays open, silent, until the server closes. */
  hang?: boolean;
}

export interface VirtualContent {
  size: number;
  header: string;
  row: string;
}

interface StoredEntry {
  bucket: string;
  name: string;
  generation: string;
  metageneration: string;
  created: string;
  contentType?: string;
  contentEncoding?: string;
  metadata?: Record<string, string>;
  content: Buffer | VirtualContent;
  /** Base64 CRC32C and MD5 of stored bytes (none for generated content). */
  hashes?: { crc32c: string; md5Hash: string };
}

export interface PutOptions {
  contentType?: string;
  contentEncoding?: string;
  metadata?: Record<string, string>;
}

export interface GcsServer {
  /** `http://127.0.0.1:PORT`, for STORAGE_EMULATOR_HOST or `apiEndpoint`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Object resource of the stored object (as GCS returns it). */
  put(bucket: string, name: string, content: string | Buffer, options?: PutOptions): ObjectResource;
  /** An object of `size` bytes generated on demand: `header` once, then `row` repeated. */
  putVirtual(
    bucket: string,
    name: string,
    size: number,
    options?: PutOptions & Partial<VirtualContent>,
  ): ObjectResource;
  remove(bucket: string, name: string): boolean;
  createBucket(bucket: string): void;
  /** The object's resource, or undefined. */
  stat(bucket: string, name: string): ObjectResource | undefined;
  /** The names of the bucket's objects, in name order. */
  names(bucket: string): string[];
  /** Custom metadata of the current generation. */
  metadataOf(bucket: string, name: string): Record<string, string> | undefined;
  /** The stored bytes, or the virtual description of a generated object. */
  contentOf(bucket: string, name: string): Buffer | VirtualContent | undefined;
  /** Media bytes written to clients for this object (all generations). */
  bytesServed(bucket: string, name: string): number;
  readonly totalBytesServed: number;
  /** Requests matching `match` (all when absent). */
  count(match?: (request: RecordedRequest) => boolean): number;
  fail(fault: Fault): void;
  clearFaults(): void;
  /** Forgets recorded requests and byte counts. */
  resetCounters(): void;
  close(): Promise<void>;
}

export interface ObjectResource {
  kind: 'storage#object';
  id: string;
  selfLink: string;
  mediaLink: string;
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  contentType?: string;
  contentEncoding?: string;
  storageClass: string;
  size: string;
  etag: string;
  timeCreated: string;
  updated: string;
  metadata?: Record<string, string>;
  crc32c?: string;
  md5Hash?: string;
}

const CHUNK = 64 * 1024;
// Editable object metadata: the fields a rewrite request body replaces as a whole.
const EDITABLE = ['contentType', 'contentEncoding', 'metadata'] as const;

export async function startGcsServer(): Promise<GcsServer> {
  const buckets = new Map<string, Map<string, StoredEntry>>();
  const sortedNames = new Map<string, string[]>();
  const served = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  let totalBytesServed = 0;
  // GCS generations are microsecond timestamps; strictly increasing here.
  let lastGeneration = BigInt(Date.now()) * 1000n;
  let url = '';

  const nextGeneration = () => String(++lastGeneration);
  const bucketOf = (bucket: string) => {
    let objects = buckets.get(bucket);
    if (!objects) {
      objects = new Map();
      buckets.set(bucket, objects);
    }
    return objects;
  };
  const store = (
    entry: Omit<StoredEntry, 'generation' | 'metageneration' | 'created' | 'hashes'>,
  ): ObjectResource => {
    const objects = bucketOf(entry.bucket);
    if (!objects.has(entry.name)) sortedNames.delete(entry.bucket);
    const stored: StoredEntry = {
      ...entry,
      generation: nextGeneration(),
      metageneration: '1',
      created: new Date().toISOString(),
    };
    if (Buffer.isBuffer(entry.content)) stored.hashes = hashesOf(entry.content);
    objects.set(entry.name, stored);
    return toResource(stored, url);
  };
  const find = (bucket: string, name: string) => buckets.get(bucket)?.get(name);

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'backendError', `test server: ${String(error)}`);
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const recorded = record(req, raw, /^\/storage\/v1(?=\/)/);
    requests.push(recorded);
    if (await applyFault(faults, recorded, res, sendError)) return;
    route(recorded, raw, req, res);
  }

  function route(
    r: RecordedRequest,
    raw: Buffer,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    const p = r.rawPath;
    let m: RegExpMatchArray | null;
    if ((m = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(p)) && r.method === 'POST') {
      return upload(decodeURIComponent(m[1] ?? ''), r, raw, req, res);
    }
    if (
      (m = /^\/b\/([^/]+)\/o\/(.+)\/(?:rewriteTo|copyTo)\/b\/([^/]+)\/o\/(.+)$/.exec(p)) &&
      r.method === 'POST'
    ) {
      const [sb, so, db, dobj] = [m[1], m[2], m[3], m[4]].map((s) => decodeURIComponent(s ?? ''));
      return rewrite(sb ?? '', so ?? '', db ?? '', dobj ?? '', r, res);
    }
    if ((m = /^\/b\/([^/]+)\/o$/.exec(p)) && r.method === 'GET') {
      return list(decodeURIComponent(m[1] ?? ''), r, res);
    }
    if ((m = /^\/b\/([^/]+)\/o\/(.+)$/.exec(p))) {
      const bucket = decodeURIComponent(m[1] ?? '');
      const name = decodeURIComponent(m[2] ?? '');
      if (r.method === 'GET')
        return r.query.alt === 'media'
          ? media(bucket, name, r, res)
          : metadata(bucket, name, r, res);
      if (r.method === 'DELETE') return del(bucket, name, r, res);
      if (r.method === 'PATCH') return patch(bucket, name, r, res);
    }
    sendError(res, 404, 'notFound', `test server: no route for ${r.method} ${p}`);
  }

  function lookup(
    bucket: string,
    name: string,
    r: RecordedRequest,
    res: http.ServerResponse,
    media = false,
  ) {
    if (!buckets.has(bucket)) {
      sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
      return undefined;
    }
    const entry = find(bucket, name);
    const generation = r.query.generation;
    if (!entry || (generation !== undefined && generation !== entry.generation)) {
      const message = `No such object: ${bucket}/${name}`;
      // Media downloads answer 404 with a plain-text body; JSON calls with an error object.
      if (media) send(res, 404, message, 'text/plain; charset=utf-8');
      else sendError(res, 404, 'notFound', message);
      return undefined;
    }
    return entry;
  }

  function metadata(
    bucket: string,
    name: string,
    r: RecordedRequest,
    res: http.ServerResponse,
  ): void {
    const entry = lookup(bucket, name, r, res);
    if (entry) sendJson(res, 200, toResource(entry, url));
  }

  /**
   * objects.patch of custom metadata: keys are merged, a null value removes its key, and the
   * metageneration goes up. `ifGenerationMatch` / `ifMetagenerationMatch` that do not hold are 412.
   */
  function patch(bucket: string, name: string, r: RecordedRequest, res: http.ServerResponse): void {
    const entry = lookup(bucket, name, r, res);
    if (!entry) return;
    const { ifGenerationMatch, ifMetagenerationMatch } = r.query;
    if (
      (ifGenerationMatch !== undefined && ifGenerationMatch !== entry.generation) ||
      (ifMetagenerationMatch !== undefined && ifMetagenerationMatch !== entry.metageneration)
    ) {
      return sendError(
        res,
        412,
        'conditionNotMet',
        'At least one of the pre-conditions you specified did not hold.',
      );
    }
    const changes = (r.body as { metadata?: Record<string, string | null> } | undefined)?.metadata;
    const metadata = { ...entry.metadata };
    for (const [key, value] of Object.entries(changes ?? {})) {
      if (value === null) delete metadata[key];
      else metadata[key] = String(value);
    }
    entry.metadata = metadata;
    entry.metageneration = String(Number(entry.metageneration) + 1);
    sendJson(res, 200, toResource(entry, url));
  }

  function del(bucket: string, name: string, r: RecordedRequest, res: http.ServerResponse): void {
    const entry = lookup(bucket, name, r, res);
    if (!entry) return;
    buckets.get(bucket)?.delete(name);
    sortedNames.delete(bucket);
    res.writeHead(204).end();
  }

  function media(bucket: string, name: string, r: RecordedRequest, res: http.ServerResponse): void {
    const entry = lookup(bucket, name, r, res, true);
    if (!entry) return;
    const size = sizeOf(entry.content);
    const range = parseRange(r.headers.range, size);
    if (range === 'unsatisfiable') {
      res
        .writeHead(416, { 'content-range': `bytes */${size}` })
        .end('Requested range not satisfiable');
      return;
    }
    const [start, end] = range ?? [0, size - 1];
    const headers: http.OutgoingHttpHeaders = {
      'content-type': entry.contentType ?? 'application/octet-stream',
      'content-length': String(Math.max(0, end - start + 1)),
      'x-goog-generation': entry.generation,
      'x-goog-metageneration': entry.metageneration,
      'x-goog-stored-content-length': String(size),
    };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    // With these the client checks a whole download's CRC32C, as it does against GCS.
    if (!range && entry.hashes) {
      headers['x-goog-hash'] = `crc32c=${entry.hashes.crc32c},md5=${entry.hashes.md5Hash}`;
      headers['x-goog-stored-content-encoding'] = entry.contentEncoding ?? 'identity';
    }
    res.writeHead(range ? 206 : 200, headers);
    void streamRange(entry, start, end + 1, res, (n) => {
      const key = `${bucket}/${name}`;
      served.set(key, (served.get(key) ?? 0) + n);
      totalBytesServed += n;
    });
  }

  function list(bucket: string, r: RecordedRequest, res: http.ServerResponse): void {
    const objects = buckets.get(bucket);
    if (!objects) return sendError(res, 404, 'notFound', 'The specified bucket does not exist.');
    let names = sortedNames.get(bucket);
    if (!names) {
      names = [...objects.keys()].sort(compareNames);
      sortedNames.set(bucket, names);
    }
    const prefix = r.query.prefix ?? '';
    const after = r.query.pageToken
      ? Buffer.from(r.query.pageToken, 'base64url').toString('utf8')
      : undefined;
    const maxResults = Math.min(Number(r.query.maxResults ?? 1000) || 1000, 1000);
    let i = lowerBound(names, after ?? prefix);
    if (after !== undefined && names[i] === after) i++;
    const items: ObjectResource[] = [];
    for (; i < names.length && items.length < maxResults; i++) {
      const name = names[i] as string;
      if (!name.startsWith(prefix)) break;
      const entry = objects.get(name);
      if (entry) items.push(toResource(entry, url));
    }
    const more = i < names.length && (names[i] as string).startsWith(prefix);
    const body: Record<string, unknown> = { kind: 'storage#objects' };
    if (items.length > 0) body.items = items;
    const last = items[items.length - 1];
    if (more && last) body.nextPageToken = Buffer.from(last.name, 'utf8').toString('base64url');
    sendJson(res, 200, r.query.fields ? partial(body, r.query.fields) : body);
  }

  function rewrite(
    sb: string,
    so: string,
    db: string,
    dobj: string,
    r: RecordedRequest,
    res: http.ServerResponse,
  ) {
    const generation = r.query.sourceGeneration;
    const source = lookup(
      sb,
      so,
      { ...r, query: generation === undefined ? {} : { generation } },
      res,
    );
    if (!source) return;
    if (refuseName(dobj, res)) return;
    const ifGenerationMatch = r.query.ifGenerationMatch;
    const existing = find(db, dobj);
    if (ifGenerationMatch !== undefined && ifGenerationMatch !== (existing?.generation ?? '0')) {
      return sendError(
        res,
        412,
        'conditionNotMet',
        'At least one of the pre-conditions you specified did not hold.',
      );
    }
    const body = isRecord(r.body) ? r.body : {};
    // Objects: rewrite — with an empty body the destination inherits the source's editable metadata;
    // with a body, the body is the whole of it (fake-gcs-server#2316 quotes the reference).
    const replace = Object.keys(body).length > 0;
    const editable = replace ? pickEditable(body) : pickEditable(source);
    const resource = store({ bucket: db, name: dobj, content: source.content, ...editable });
    const size = String(sizeOf(source.content));
    sendJson(res, 200, {
      kind: 'storage#rewriteResponse',
      totalBytesRewritten: size,
      objectSize: size,
      done: true,
      resource,
    });
  }

  function upload(
    bucket: string,
    r: RecordedRequest,
    raw: Buffer,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) {
    const type = r.query.uploadType;
    if (type === 'media') {
      const name = r.query.name;
      if (!name) return sendError(res, 400, 'required', 'Required parameter: name');
      if (refuseName(name, res)) return;
      const contentType = req.headers['content-type'];
      return sendJson(res, 200, store({ bucket, name, content: raw, contentType }));
    }
    if (type === 'multipart') {
      const parts = parseMultipart(raw, req.headers['content-type'] ?? '');
      const [meta, media] = parts;
      if (!meta || !media)
        return sendError(res, 400, 'invalid', 'multipart upload needs a metadata and a media part');
      const resource: unknown = JSON.parse(meta.body.toString('utf8'));
      const fields = isRecord(resource) ? resource : {};
      const name = typeof fields.name === 'string' ? fields.name : r.query.name;
      if (!name) return sendError(res, 400, 'required', 'Required parameter: name');
      if (refuseName(name, res)) return;
      const editable = pickEditable(fields);
      editable.contentType ??= media.contentType;
      return sendJson(res, 200, store({ bucket, name, content: media.body, ...editable }));
    }
    sendError(
      res,
      400,
      'invalid',
      `test server: uploadType ${String(type)} is not supported; use resumable: false`,
    );
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    get url() {
      return url;
    },
    requests,
    put: (bucket, name, content, options = {}) =>
      store({ bucket, name, content: Buffer.from(content), ...options }),
    putVirtual: (
      bucket,
      name,
      size,
      { header = 'id,value\n', row = '1,abcdefghijklmnopqrstuvwxyz\n', ...options } = {},
    ) => store({ bucket, name, content: { size, header, row }, ...options }),
    remove(bucket, name) {
      sortedNames.delete(bucket);
      return buckets.get(bucket)?.delete(name) ?? false;
    },
    createBucket: (bucket) => void bucketOf(bucket),
    stat(bucket, name) {
      const entry = find(bucket, name);
      return entry && toResource(entry, url);
    },
    names: (bucket) => [...(buckets.get(bucket)?.keys() ?? [])].sort(compareNames),
    metadataOf: (bucket, name) => find(bucket, name)?.metadata,
    contentOf: (bucket, name) => find(bucket, name)?.content,
    bytesServed: (bucket, name) => served.get(`${bucket}/${name}`) ?? 0,
    get totalBytesServed() {
      return totalBytesServed;
    },
    count: (match) => (match ? requests.filter(match).length : requests.length),
    fail: (fault) => void faults.push({ times: 1, ...fault }),
    clearFaults: () => void faults.splice(0),
    resetCounters() {
      requests.splice(0);
      served.clear();
      totalBytesServed = 0;
    },
    close: () => closeServer(server),
  };
}

/**
 * Answers 400 for a name Cloud Storage refuses: over 1,024 bytes of UTF-8, or with a carriage return
 * or line feed (https://cloud.google.com/storage/docs/objects, naming requirements).
 */
function refuseName(name: string, res: http.ServerResponse): boolean {
  const problem =
    Buffer.byteLength(name, 'utf8') > 1024
      ? 'The object name is longer than 1024 bytes.'
      : /[\r\n]/.test(name)
        ? 'The object name contains a carriage return or line feed.'
        : undefined;
  if (problem) sendError(res, 400, 'invalid', problem);
  return problem !== undefined;
}

function toResource(entry: StoredEntry, base: string): ObjectResource {
  const path = `b/${encodeURIComponent(entry.bucket)}/o/${encodeURIComponent(entry.name)}`;
  const resource: ObjectResource = {
    kind: 'storage#object',
    id: `${entry.bucket}/${entry.name}/${entry.generation}`,
    selfLink: `${base}/storage/v1/${path}`,
    mediaLink: `${base}/download/storage/v1/${path}?generation=${entry.generation}&alt=media`,
    name: entry.name,
    bucket: entry.bucket,
    generation: entry.generation,
    metageneration: entry.metageneration,
    storageClass: 'STANDARD',
    size: String(sizeOf(entry.content)),
    etag: `CK${entry.generation}`,
    timeCreated: entry.created,
    updated: entry.created,
  };
  if (entry.hashes) Object.assign(resource, entry.hashes);
  if (entry.contentType !== undefined) resource.contentType = entry.contentType;
  if (entry.contentEncoding !== undefined) resource.contentEncoding = entry.contentEncoding;
  if (entry.metadata !== undefined) resource.metadata = { ...entry.metadata };
  return resource;
}

function hashesOf(content: Buffer): { crc32c: string; md5Hash: string } {
  const crc32c = new CRC32C();
  crc32c.update(content);
  return { crc32c: crc32c.toString(), md5Hash: createHash('md5').update(content).digest('base64') };
}

function pickEditable(source: Record<string, unknown> | StoredEntry): PutOptions {
  const out: PutOptions = {};
  for (const key of EDITABLE) {
    const value: unknown = source[key];
    if (key === 'metadata') {
      if (isRecord(value))
        out.metadata = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
    } else if (typeof value === 'string') {
      out[key] = value;
    }
  }
  return out;
}

/**
 * A partial response for a `fields` selector such as `items(name,size),nextPageToken`: only the
 * named fields, as GCS answers (one level of nesting is enough here).
 */
function partial(body: Record<string, unknown>, fields: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [, key = '', inner] of fields.matchAll(/([A-Za-z_]+)(?:\(([^)]*)\))?/g)) {
    const value = body[key];
    if (value === undefined) continue;
    if (inner === undefined || !Array.isArray(value)) {
      out[key] = value;
      continue;
    }
    const keep = inner.split(',').map((f) => f.trim());
    out[key] = value.map((item: Record<string, unknown>) =>
      Object.fromEntries(keep.filter((f) => item[f] !== undefined).map((f) => [f, item[f]])),
    );
  }
  return out;
}

export function sizeOf(content: Buffer | VirtualContent): number {
  return Buffer.isBuffer(content) ? content.length : content.size;
}

/** Bytes [start, end) of stored or generated content. */
export function sliceOf(content: Buffer | VirtualContent, start: number, end: number): Buffer {
  if (Buffer.isBuffer(content)) return content.subarray(start, end);
  const out = Buffer.alloc(Math.max(0, end - start));
  const header = Buffer.from(content.header);
  const row = Buffer.from(content.row);
  for (let at = start; at < end;) {
    if (at < header.length) {
      at += header.copy(out, at - start, at, Math.min(header.length, at + (end - at)));
      continue;
    }
    const offset = (at - header.length) % row.length;
    at += row.copy(out, at - start, offset, Math.min(row.length, offset + (end - at)));
  }
  return out;
}

async function streamRange(
  entry: StoredEntry,
  start: number,
  end: number,
  res: http.ServerResponse,
  onBytes: (n: number) => void,
): Promise<void> {
  let closed = false;
  res.on('close', () => (closed = true));
  for (let at = start; at < end && !closed; at += CHUNK) {
    const chunk = sliceOf(entry.content, at, Math.min(end, at + CHUNK));
    onBytes(chunk.length);
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
  }
  if (!closed) res.end();
}

function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m) return undefined;
  const [first, last] = [m[1] ?? '', m[2] ?? ''];
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const n = Math.min(Number(last), size);
    return n === 0 ? 'unsatisfiable' : [size - n, size - 1];
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return end < start ? undefined : [start, end];
}

/** GCS lists in UTF-8 byte order, which is code point order (not UTF-16 order). */
function compareNames(a: string, b: string): number {
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(j) as number;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

function lowerBound(sorted: string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(sorted[mid] as string, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function parseMultipart(
  raw: Buffer,
  contentType: string,
): { contentType?: string; body: Buffer }[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) return [];
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { contentType?: string; body: Buffer }[] = [];
  let at = raw.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (raw.subarray(start, start + 2).toString() === '--') break;
    const next = raw.indexOf(delimiter, start);
    if (next === -1) break;
    const part = raw.subarray(start, next);
    const split = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, split).toString('utf8');
    let body = part.subarray(split + 4);
    if (body.subarray(-2).toString() === '\r\n') body = body.subarray(0, -2);
    const type = /content-type:\s*([^\r\n]+)/i.exec(head)?.[1]?.trim();
    parts.push(type === undefined ? { body } : { contentType: type, body });
    at = next;
  }
  return parts;
}

// ---- shared with the BigQuery test server ----

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function record(req: http.IncomingMessage, raw: Buffer, prefix: RegExp): RecordedRequest {
  const parsed = new URL(req.url ?? '/', 'http://localhost');
  const rawPath = parsed.pathname.replace(prefix, '');
  const recorded: RecordedRequest = {
    method: req.method ?? 'GET',
    path: decodeURIComponent(rawPath),
    rawPath,
    query: Object.fromEntries(parsed.searchParams),
    headers: req.headers,
    at: Date.now(),
  };
  if (raw.length > 0 && /json/.test(req.headers['content-type'] ?? '')) {
    try {
      recorded.body = JSON.parse(raw.toString('utf8'));
    } catch {
      recorded.body = raw.toString('utf8');
    }
  }
  return recorded;
}

/** Applies the first fault that matches; true when the request has been answered (or dropped). */
export async function applyFault(
  faults: Fault[],
  request: RecordedRequest,
  res: http.ServerResponse,
  sendError: (res: http.ServerResponse, status: number, reason: string, message: string) => void,
): Promise<boolean> {
  const index = faults.findIndex((f) => (f.times ?? 1) > 0 && (!f.match || f.match(request)));
  const fault = faults[index];
  if (!fault) return false;
  fault.times = (fault.times ?? 1) - 1;
  if (fault.times <= 0) faults.splice(index, 1);
  if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
  if (fault.hang) return true;
  if (fault.loseAnswer) {
    res.end = ((): http.ServerResponse => {
      res.socket?.destroy();
      return res;
    }) as typeof res.end;
    return false;
  }
  if (fault.reset) {
    res.socket?.destroy();
    return true;
  }
  if (fault.status === undefined) return false;
  sendError(
    res,
    fault.status,
    fault.reason ?? reasonFor(fault.status),
    fault.message ?? `injected ${fault.status}`,
  );
  return true;
}

function reasonFor(status: number): string {
  if (status === 429) return 'rateLimitExceeded';
  if (status === 404) return 'notFound';
  if (status === 403) return 'forbidden';
  if (status >= 500) return 'backendError';
  return 'invalid';
}

/** A Google JSON API error body: `{error: {code, message, errors: [{message, domain, reason}]}}`. */
export function sendError(
  res: http.ServerResponse,
  status: number,
  reason: string,
  message: string,
  extra = {},
) {
  sendJson(res, status, {
    error: { code: status, message, errors: [{ message, domain: 'global', reason }], ...extra },
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), 'application/json; charset=UTF-8');
}

function send(res: http.ServerResponse, status: number, text: string, type: string): void {
  res
    .writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) })
    .end(text);
}

export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  );
}

/** A client for the test server: with `apiEndpoint` set the library sends no credentials. */
export function storageClient(server: { url: string }, options: StorageOptions = {}): Storage {
  return new Storage({ projectId: 'test-project', apiEndpoint: server.url, ...options });
}
