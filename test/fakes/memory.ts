import type { OutgoingMessage, Publisher } from '../../src/publisher';
import {
  BucketNotFoundError,
  ObjectGoneError,
  type ObjectStore,
  type StoredObject,
} from '../../src/stores/store';
import type { LoadJob, LoadResult, TableInfo, Warehouse } from '../../src/warehouses/warehouse';

/** An ObjectStore in memory: a real implementation of the port, for fast tests of the use case. */
export class MemoryStore implements ObjectStore {
  readonly objects = new Map<
    string,
    { object: StoredObject; content: Buffer; metadata: Record<string, string> }
  >();
  readonly headReads: { uri: string; bytes: number }[] = [];
  readonly buckets = new Set<string>();
  private nextGeneration = 1_000_000;

  put(bucket: string, name: string, content: string | Buffer): StoredObject {
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const object = { bucket, name, generation: String(this.nextGeneration++), size: bytes.length };
    this.buckets.add(bucket);
    this.objects.set(`${bucket}/${name}`, { object, content: bytes, metadata: {} });
    return object;
  }

  remove(bucket: string, name: string): void {
    this.objects.delete(`${bucket}/${name}`);
  }

  async stat(bucket: string, name: string): Promise<StoredObject | undefined> {
    return this.described(this.objects.get(`${bucket}/${name}`));
  }

  private described(entry: { object: StoredObject; metadata: Record<string, string> } | undefined) {
    if (!entry) return undefined;
    const hasMetadata = Object.keys(entry.metadata).length > 0;
    return hasMetadata ? { ...entry.object, metadata: { ...entry.metadata } } : entry.object;
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
    });
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
  readonly rejections: { jobId: string; reason: string }[] = [];
  readonly done = new Map<string, number>();
  readonly outcomes = new Map<string, LoadResult | Error>();

  constructor(private readonly store: MemoryStore) {}

  async load(job: LoadJob): Promise<LoadResult> {
    this.jobs.push(job);
    const scripted = this.outcomes.get(job.jobId);
    if (scripted instanceof Error) throw scripted;
    if (scripted) return scripted;
    const previous = this.done.get(job.jobId);
    if (previous !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows: previous };
    let rows = 0;
    for (const source of job.sources) {
      const entry = this.store.objects.get(`${source.bucket}/${source.name}`);
      const lines = (entry?.content.toString('utf8') ?? '').split('\n').filter((l) => l !== '');
      rows += Math.max(0, lines.length - job.csv.skipLeadingRows);
    }
    this.done.set(job.jobId, rows);
    return { outcome: 'loaded', jobId: job.jobId, rows };
  }

  completedRows(jobId: string): number | undefined {
    return this.done.get(jobId);
  }

  async recordRejection(job: LoadJob, reason: string): Promise<void> {
    this.rejections.push({ jobId: job.jobId, reason });
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
