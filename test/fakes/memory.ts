import {
  CLAIM_METADATA_KEY,
  formatClaim,
  parseClaim,
  type ClaimStore,
  type SwapResult,
} from '../../src/stores/claims';
import { createBatches, type BatchLog } from '../../src/batching';
import type { Config } from '../../src/config';
import type { OutgoingMessage, Publisher } from '../../src/objects/publisher';
import type { Services } from '../../src/ingest/services';
import {
  BucketNotFoundError,
  ObjectGoneError,
  gsUri,
  type ObjectStore,
  type StoredObject,
} from '../../src/stores/store';
import type { TableColumn } from '../../src/schema/columns';
import {
  tableId,
  type ClaimedLoadResult,
  type Destination,
  type FollowedJob,
  type LoadJob,
  type LoadResult,
  type RejectedSources,
  type TableInfo,
  type Warehouse,
} from '../../src/warehouses/warehouse';

/** An ObjectStore in memory: a real implementation of the port, for fast tests of the use case. */
export class MemoryStore implements ObjectStore {
  readonly objects = new Map<
    string,
    {
      object: StoredObject;
      content: Buffer;
      metadata: Record<string, string>;
      metageneration: number;
    }
  >();
  readonly headReads: { uri: string; bytes: number }[] = [];
  readonly buckets = new Set<string>();
  private nextGeneration = 1_000_000;

  put(bucket: string, name: string, content: string | Buffer): StoredObject {
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const object = { bucket, name, generation: String(this.nextGeneration++), size: bytes.length };
    this.buckets.add(bucket);
    this.objects.set(`${bucket}/${name}`, {
      object,
      content: bytes,
      metadata: {},
      metageneration: 1,
    });
    return object;
  }

  remove(bucket: string, name: string): void {
    this.objects.delete(`${bucket}/${name}`);
  }

  /** `bucket/name` of every stat, in order. */
  readonly stats: string[] = [];

  async stat(bucket: string, name: string): Promise<StoredObject | undefined> {
    this.stats.push(`${bucket}/${name}`);
    return this.described(this.objects.get(`${bucket}/${name}`));
  }

  private described(
    entry:
      | { object: StoredObject; metadata: Record<string, string>; metageneration: number }
      | undefined,
  ) {
    if (!entry) return undefined;
    const hasMetadata = Object.keys(entry.metadata).length > 0;
    const metageneration = String(entry.metageneration);
    return hasMetadata
      ? { ...entry.object, metadata: { ...entry.metadata }, metageneration }
      : { ...entry.object, metageneration };
  }

  /** Claims as Cloud Storage keeps them: in metadata, swapped on the metageneration. */
  claims(graceMs = 120_000): ClaimStore {
    return {
      graceMs,
      read: async (object, destination) => {
        const current =
          object.metageneration === undefined
            ? await this.stat(object.bucket, object.name)
            : object;
        const claim = parseClaim(current?.metadata?.[CLAIM_METADATA_KEY], destination, object);
        return { ...(claim ? { claim } : {}), version: current?.metageneration ?? '1' };
      },
      swap: async (swaps) =>
        swaps.map(({ object, claim, version }): SwapResult => {
          const entry = this.objects.get(`${object.bucket}/${object.name}`);
          if (!entry || entry.object.generation !== object.generation) return { kind: 'gone' };
          if (String(entry.metageneration) !== version) return { kind: 'lost' };
          entry.metadata[CLAIM_METADATA_KEY] = formatClaim(claim, object);
          entry.metageneration += 1;
          return { kind: 'won', state: { claim, version: String(entry.metageneration) } };
        }),
    };
  }

  async readHead(object: StoredObject, maxBytes: number): Promise<Buffer> {
    const entry = this.objects.get(`${object.bucket}/${object.name}`);
    if (!entry || entry.object.generation !== object.generation) {
      throw new ObjectGoneError(
        `gs://${object.bucket}/${object.name}#${object.generation} is gone`,
      );
    }
    const head = entry.content.subarray(0, maxBytes);
    this.headReads.push({ uri: `gs://${object.bucket}/${object.name}`, bytes: head.length });
    return head;
  }

  async *list(bucket: string, prefix: string): AsyncIterable<StoredObject> {
    if (!this.buckets.has(bucket)) throw new BucketNotFoundError(`bucket ${bucket} does not exist`);
    const objects = [...this.objects.values()]
      .filter((e) => e.object.bucket === bucket && e.object.name.startsWith(prefix))
      .sort((a, b) => (a.object.name < b.object.name ? -1 : 1));
    for (const entry of objects) yield this.described(entry) as StoredObject;
  }

  async annotate(object: StoredObject, metadata: Record<string, string>): Promise<void> {
    const entry = this.objects.get(`${object.bucket}/${object.name}`);
    if (!entry || entry.object.generation !== object.generation)
      throw new ObjectGoneError(`${object.name} is no longer that generation`);
    Object.assign(entry.metadata, metadata);
    entry.metageneration += 1;
  }

  async copyTo(
    object: StoredObject,
    targetName: string,
    metadata: Record<string, string>,
  ): Promise<void> {
    const entry = this.objects.get(`${object.bucket}/${object.name}`);
    if (!entry || entry.object.generation !== object.generation)
      throw new ObjectGoneError(`${object.name} is gone`);
    const copy = this.put(object.bucket, targetName, entry.content);
    this.objects.set(`${copy.bucket}/${copy.name}`, {
      object: copy,
      content: entry.content,
      metadata,
      metageneration: 1,
    });
  }

  /**
   * A copy as `objects.rewrite` or `gcloud storage cp` makes it: a new object generation with the
   * source's custom metadata.
   */
  copy(bucket: string, from: string, to: string): StoredObject {
    const entry = this.objects.get(`${bucket}/${from}`);
    if (!entry) throw new Error(`no object ${from}`);
    const copy = this.put(bucket, to, entry.content);
    (this.objects.get(`${bucket}/${to}`) as { metadata: Record<string, string> }).metadata = {
      ...entry.metadata,
    };
    return copy;
  }

  metadataOf(bucket: string, name: string): Record<string, string> | undefined {
    return this.objects.get(`${bucket}/${name}`)?.metadata;
  }
}

/**
 * A Warehouse that counts data rows (lines after the skipped ones) and remembers job ids: enough
 * to test what the use case asks of a warehouse. `outcomes` scripts a result per job id.
 */
export class MemoryWarehouse implements Warehouse {
  readonly jobs: LoadJob[] = [];
  /** Each rejection recorded: by its job's id, or by its objects when it had no job. */
  readonly rejections: { jobId?: string; uris?: string[]; reason: string }[] = [];
  readonly done = new Map<string, number>();
  readonly outcomes = new Map<string, LoadResult | Error>();
  /** Results of coalesced jobs by id, as followJob reports them. */
  readonly claimedJobs = new Map<string, FollowedJob>();
  /** Decides a coalesced job's result before it loads (undefined: load it). */
  script: ((job: LoadJob) => ClaimedLoadResult | Error | undefined) | undefined;
  jobsPerDay = Infinity;
  /** Table columns by `project.dataset.table`, as a fresh read answers them. */
  readonly columns = new Map<string, TableColumn[]>();
  /** What the cache answers, where it differs from `columns` (stale). */
  readonly cached = new Map<string, TableColumn[]>();
  readonly columnReads: { table: string; fresh: boolean }[] = [];

  constructor(private readonly store: MemoryStore) {}

  async tableColumns(destination: Destination, fresh = false): Promise<TableColumn[] | undefined> {
    const table = tableId(destination);
    this.columnReads.push({ table, fresh });
    return (fresh ? undefined : this.cached.get(table)) ?? this.columns.get(table);
  }

  async load(job: LoadJob): Promise<LoadResult> {
    this.jobs.push(job);
    const scripted = this.outcomes.get(job.jobId);
    if (scripted instanceof Error) throw scripted;
    if (scripted) return scripted;
    const previous = this.done.get(job.jobId);
    if (previous !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows: previous };
    const rows = this.countRows(job);
    this.done.set(job.jobId, rows);
    return { outcome: 'loaded', jobId: job.jobId, rows };
  }

  async loadClaimed(job: LoadJob): Promise<ClaimedLoadResult> {
    this.jobs.push(job);
    const scripted = this.script?.(job);
    if (scripted instanceof Error) throw scripted;
    // As BigQuery does, a job reports the bytes it read from its sources.
    const inputBytes = job.sources.reduce(
      (sum, s) => sum + (this.store.objects.get(`${s.bucket}/${s.name}`)?.content.length ?? 0),
      0,
    );
    const result: ClaimedLoadResult = scripted ?? {
      outcome: 'loaded',
      jobId: job.jobId,
      rows: this.countRows(job),
      inputBytes,
    };
    if (result.outcome === 'loaded') this.done.set(job.jobId, result.rows);
    this.claimedJobs.set(job.jobId, {
      result,
      uris: job.sources.map((s) => `gs://${s.bucket}/${s.name}`),
    });
    return result;
  }

  async followJob(jobId: string): Promise<FollowedJob | undefined> {
    const claimed = this.claimedJobs.get(jobId);
    if (claimed) return claimed;
    const rows = this.done.get(jobId);
    return rows === undefined
      ? undefined
      : { result: { outcome: 'loaded', jobId, rows }, uris: [] };
  }

  private countRows(job: LoadJob): number {
    let rows = 0;
    for (const source of job.sources) {
      const entry = this.store.objects.get(`${source.bucket}/${source.name}`);
      const lines = (entry?.content.toString('utf8') ?? '').split('\n').filter((l) => l !== '');
      rows += Math.max(0, lines.length - job.csv.skipLeadingRows);
    }
    return rows;
  }

  completedRows(jobId: string): number | undefined {
    return this.done.get(jobId);
  }

  async recordRejection(rejected: RejectedSources, reason: string): Promise<void> {
    const uris = rejected.sources.map(gsUri);
    this.rejections.push(
      rejected.jobId === undefined ? { uris, reason } : { jobId: rejected.jobId, reason },
    );
  }

  async tables(): Promise<TableInfo[]> {
    return [];
  }

  async close(): Promise<void> {}

  async abort(): Promise<void> {}
}

export class MemoryPublisher implements Publisher {
  readonly published: { topic: string; message: OutgoingMessage }[] = [];

  async publish(topic: string, messages: OutgoingMessage[]): Promise<string[]> {
    return messages.map((message) => {
      this.published.push({ topic, message });
      return String(this.published.length);
    });
  }

  async close(): Promise<void> {}
}

/** Services on the memory fakes, with claims on the memory store and a batcher over them. */
export function memoryServices(
  config: Config,
  store: MemoryStore,
  warehouse: Warehouse,
  options: {
    publisher?: Publisher;
    log?: BatchLog;
    claimGraceMs?: number;
    /** The store the use case sees, when it wraps the memory store. */
    view?: ObjectStore;
  } = {},
): Services {
  const parts = {
    config,
    store: options.view ?? store,
    warehouse,
    publisher: options.publisher ?? new MemoryPublisher(),
    claims: store.claims(options.claimGraceMs),
  };
  return { ...parts, batches: createBatches(parts, options.log ?? { warn: () => undefined }) };
}
