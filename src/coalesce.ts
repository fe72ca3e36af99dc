import { createHash, randomBytes } from 'node:crypto';
import { Batcher, type PaceChange, type Waiting } from './batcher';
import type { Claim, ClaimState } from './claims';
import type { BatchOptions, Route } from './config';
import { TransientError, errorMessage } from './errors';
import { createJobWatch } from './job-watch';
import { buildJob, checkObjectHead, headerShape, memberRows, namesObject } from './jobs';
import { identify, type ObjectResult } from './outcomes';
import { reject } from './quarantine';
import { jobIdFor } from './routing';
import type { Services } from './services';
import { gsUri, type StoredObject } from './stores/store';
import {
  tableId,
  type ClaimedLoadResult,
  type Destination,
  type LoadJob,
  type SourceHead,
} from './warehouses/warehouse';

/** One object of a batching route, as the use case hands it over. */
export interface BatchObject {
  object: StoredObject;
  route: Route & { batch: BatchOptions };
  destination: Destination;
  /** Its header and first rows, once the head check read them. */
  head?: SourceHead;
}

/** An object of a route that loads each object alone. */
export type LoneObject = Omit<BatchObject, 'route'> & { route: Route };

/** Loads the objects of batching routes: paced, coalesced, each generation claimed for its job. */
export interface Batches {
  /** The object's result; TransientError when its time budget runs out first (503, redelivered). */
  load(item: BatchObject, forcedBy: string | undefined, deadline: number): Promise<ObjectResult>;
  /**
   * For `batch: false`: the result of the job an earlier claim on the object names, if it loaded it;
   * else the claim version to swap when claiming it for its own job.
   */
  followClaim(item: LoneObject, deadline: number): Promise<ObjectResult | { version: string }>;
  /** For `batch: false`: claims the object for its one-object job; 'lost' when another claim won. */
  claimAlone(item: LoneObject, jobId: string, version: string): Promise<'won' | 'lost' | 'gone'>;
  /** Fails every object still waiting for a job (shutdown): none of them was claimed yet. */
  abort(reason: string): void;
}

export interface BatchLog {
  warn(fields: object, message: string): void;
}

/** A forced reload whose job failed goes again after this. */
const FORCED_RETRY_MS = 1000;

interface Member extends Waiting {
  item: BatchObject;
  table: string;
  /** The claim version the next swap expects. */
  version: string;
  deadline: number;
  /** A forced reload's job id prefix: it never joins another job, and goes again under its own id. */
  forced?: string;
  finish(outcome: ObjectResult | 'again' | Error): void;
}

/** The services a batcher works with: all but itself. */
export type BatchServices = Omit<Services, 'batches'>;

export function createBatches(services: BatchServices, log: BatchLog): Batches {
  const { config, store, warehouse, claims } = services;
  const inFlight = new Map<string, Promise<void>>();
  // The jobs that claims made elsewhere (another instance, an earlier delivery) name.
  const jobs = createJobWatch((jobId, deadline) =>
    warehouse.followJob(jobId, { location: config.location, deadline }),
  );
  // Objects per destination between their arrival and the queue (their claim and head being read).
  const arriving = new Map<string, number>();
  const batcher = new Batcher<Member>(
    (table, members) => runJob(table, members, jobIdOf(members)),
    (change: PaceChange) => log.warn(change, describePaceChange(change)),
    (table) => (arriving.get(table) ?? 0) > 0,
  );
  const paceOf = (item: BatchObject) => ({
    jobsPerDay: item.route.batch.jobsPerDay ?? warehouse.jobsPerDay,
    burst: item.route.batch.burst,
    maxFiles: item.route.batch.maxFiles,
  });

  /** Runs one job for members not yet settled; hands back what must go again. Never rejects. */
  async function runJob(table: string, members: Member[], jobId: string): Promise<void> {
    const run = (async () => {
      // The same generation delivered twice at once goes in once; its twin follows the claim.
      const live: Member[] = [];
      const keys = new Set<string>();
      for (const m of members.filter((member) => !member.settled)) {
        const key = `${gsUri(m.item.object)}#${m.item.object.generation}`;
        if (keys.has(key)) m.finish('again');
        else live.push(m);
        keys.add(key);
      }
      const claim: Claim = { jobId, at: Date.now(), destination: table };
      let won: Member[];
      try {
        won = await claimAll(live, claim);
      } catch (error) {
        live.forEach((m) => m.finish(asError(error)));
        return;
      }
      if (won.length === 0) {
        batcher.refund(table);
        return;
      }
      // Another instance takes a claim over once the grace has passed without a job: an insert must
      // never come that late, so claiming that took too long inserts nothing.
      if (Date.now() - claim.at > claims.graceMs / 2) {
        const late = new TransientError(
          `claiming ${won.length} objects for job ${jobId} took over ${claims.graceMs / 2000} s; nothing was inserted, redelivery will claim them again`,
        );
        won.forEach((m) => m.finish(late));
        batcher.refund(table);
        return;
      }
      const { route, destination } = (won[0] as Member).item;
      const job: LoadJob = {
        ...buildJob(
          won.map((m) => m.item.object),
          route,
          destination,
          config,
          jobId,
          Math.max(...won.map((m) => m.deadline)),
          (won[0] as Member).item.head,
        ),
        claimed: true,
      };
      let result: ClaimedLoadResult;
      try {
        result = await warehouse.loadClaimed(job);
      } catch (error) {
        // Whether the job was inserted is unknown: 503, and each redelivery follows the claim.
        won.forEach((m) => m.finish(asError(error)));
        return;
      }
      await settleJob(table, won, job, result, claim.at);
    })().catch((error: unknown) => members.forEach((m) => m.finish(asError(error))));
    inFlight.set(jobId, run);
    try {
      await run;
    } finally {
      inFlight.delete(jobId);
    }
  }

  /** Swaps each member's claim to `claim`; those that lost it follow the claim that won. */
  async function claimAll(members: Member[], claim: Claim): Promise<Member[]> {
    const swaps = await claims.swap(
      members.map((m) => ({ object: m.item.object, claim, version: m.version })),
    );
    const won: Member[] = [];
    swaps.forEach((swap, i) => {
      const member = members[i] as Member;
      if (swap.kind === 'won') {
        member.version = swap.state.version;
        won.push(member);
      } else member.finish('again');
    });
    return won;
  }

  async function settleJob(
    table: string,
    won: Member[],
    job: LoadJob,
    result: ClaimedLoadResult,
    started: number,
  ): Promise<void> {
    const { destination } = job;
    const pace = paceOf((won[0] as Member).item);
    const requeue = (members: Member[], alone = false) => {
      members.filter((m) => m.forced).forEach((m) => m.finish('again'));
      const rest = members.filter((m) => !m.forced);
      if (rest.length > 0) batcher.add(table, pace, rest, { alone, front: true });
    };
    // Over a BigQuery limit a forced reload waits its turn in the queue too, still claimed.
    const requeueOverLimit = (members: Member[]) => {
      for (const m of members.filter((member) => member.forced))
        batcher.add(table, pace, [m], { alone: true, front: true });
      requeue(members.filter((m) => !m.forced));
    };
    switch (result.outcome) {
      case 'loaded':
      case 'duplicate': {
        const done: Omit<ObjectResult, 'uri'> = {
          outcome: 'loaded',
          destination: tableId(destination),
          jobId: result.jobId,
          rows: result.rows,
          jobObjects: won.length,
        };
        if (result.outcome === 'loaded' && result.badRecords && result.badRecords.count > 0) {
          done.badRecords = result.badRecords.count;
          done.reason = `${result.badRecords.count} bad rows skipped under maxBadRecords in the job; first: ${result.badRecords.first}`;
        }
        batcher.succeeded(table);
        // Schema changes are told once, on the first member: each has the header that made them.
        const changes = result.outcome === 'loaded' ? result.schemaChanges : undefined;
        won.forEach((m, i) =>
          m.finish({
            ...identify(m.item.object),
            ...done,
            ...memberRows(result, i, won.length),
            ...(i === 0 && changes?.length ? { schemaChanges: changes } : {}),
          }),
        );
        // Only a warning can come of it: the next job need not wait for these reads.
        void warnReplaced(
          won,
          result.jobId,
          result.outcome === 'loaded' ? result.inputBytes : undefined,
        );
        return;
      }
      case 'rejected': {
        const named = won.filter((m) => namesObject(result.reason, m.item.object));
        if (won.length === 1 || (named.length > 0 && named.length < won.length)) {
          const bad = won.length === 1 ? won : named;
          for (const m of bad) {
            const one = { ...job, sources: [m.item.object] };
            m.finish(await reject(m.item.object, result.reason, one, services).catch(asError));
          }
          requeue(won.filter((m) => !bad.includes(m)));
          return;
        }
        // The reason names no single member: halve until each bad object is alone.
        const half = Math.ceil(won.length / 2);
        requeue(won.slice(half), true);
        requeue(won.slice(0, half), true);
        return;
      }
      case 'replaced': {
        // The changed objects go again: their new generation is skipped here and loads by its own event.
        const named = won.filter((m) => namesObject(result.reason, m.item.object));
        named.forEach((m) => m.finish('again'));
        requeue(won.filter((m) => !named.includes(m)));
        return;
      }
      case 'failed':
        if (result.quota === 'daily') batcher.slowDown(table, result.reason, started);
        if (result.quota === 'shortTerm') batcher.holdOff(table, result.reason);
        if (result.quota) requeueOverLimit(won);
        else requeue(won);
        return;
    }
  }

  /**
   * A load job reads the live object and cannot pin a generation: a member replaced between its claim
   * and the job may have been loaded with its newer bytes. Its own event loads the newer generation.
   * A job that read exactly the claimed sizes is taken to have read the claimed generations (a
   * replacement of the very same size goes unwarned), which spares a read of each member.
   */
  async function warnReplaced(
    members: Member[],
    jobId: string,
    inputBytes?: number,
  ): Promise<void> {
    const claimedBytes = members.reduce((sum, m) => sum + m.item.object.size, 0);
    if (!warehouse.pinsGenerations && inputBytes !== claimedBytes) {
      await Promise.all(
        members.map(async ({ item: { object } }) => {
          const current = await store.stat(object.bucket, object.name).catch(() => undefined);
          if (current && current.generation !== object.generation) {
            log.warn(
              {
                uri: gsUri(object),
                claimed: object.generation,
                current: current.generation,
                jobId,
              },
              `${gsUri(object)} was replaced while job ${jobId} loaded it: generation ${object.generation} was claimed, ${current.generation} may be what was read`,
            );
          }
        }),
      );
    }
  }

  /** `wait`: the claim's job may still be inserted; `reread`: the claim may have changed; `again`: claim anew. */
  type Followed =
    | { kind: 'result'; result: ObjectResult }
    | { kind: 'wait'; ms: number }
    | { kind: 'reread' | 'again' };

  /** Follows the claim an object carries to what its job came to. */
  async function follow(item: BatchObject, claim: Claim, deadline: number): Promise<Followed> {
    const running = inFlight.get(claim.jobId);
    if (running) {
      await running;
      return { kind: 'reread' };
    }
    const job = await jobs.find(claim.jobId, deadline);
    const { object } = item;
    const where = { ...identify(object), destination: claim.destination, jobId: claim.jobId };
    const young = claims.graceMs - (Date.now() - claim.at);
    if (!job)
      return young > 0
        ? { kind: 'wait', ms: Math.max(1, Math.min(jobs.nextLookIn(claim.jobId), young + 1)) }
        : { kind: 'again' };
    const { result } = job;
    if (result.outcome === 'loaded' || result.outcome === 'duplicate') {
      const duplicate: ObjectResult = { ...where, outcome: 'duplicate', rows: result.rows };
      if (job.uris.length > 1) duplicate.jobObjects = job.uris.length;
      return { kind: 'result', result: duplicate };
    }
    if (result.outcome === 'rejected') {
      const uri = gsUri(object);
      const own = job.reasons?.[uri];
      const mine =
        own !== undefined ||
        (job.uris.length === 1 && job.uris[0] === uri) ||
        namesObject(result.reason, object);
      if (!mine) return { kind: 'again' };
      const one = buildJob([object], item.route, item.destination, config, claim.jobId, deadline);
      const reason = own ?? result.reason;
      return { kind: 'result', result: await reject(object, reason, one, services, false) };
    }
    return { kind: 'again' };
  }

  /** A member and the outcome its `finish` settles; it answers 503 when its time budget runs out first. */
  function newMember(item: BatchObject, version: string, deadline: number, forced?: string) {
    let settle: (outcome: ObjectResult | 'again' | Error) => void = () => undefined;
    const outcome = new Promise<ObjectResult | 'again'>((resolve, reject_) => {
      settle = (result) => (result instanceof Error ? reject_(result) : resolve(result));
    });
    const member: Member = {
      item,
      table: tableId(item.destination),
      version,
      deadline,
      ...(forced === undefined ? {} : { forced }),
      size: item.object.size,
      shape: item.head && headerShape(item.head),
      settled: false,
      finish(result) {
        if (member.settled) return;
        member.settled = true;
        clearTimeout(timer);
        settle(result);
      },
    };
    const timer = setTimeout(
      () =>
        member.finish(
          new TransientError(
            `${gsUri(item.object)}: no load job for ${member.table} finished within the time budget; redelivery will follow its claim`,
          ),
        ),
      Math.max(0, deadline - Date.now()),
    );
    return { member, outcome };
  }

  /** Waits in the queue for a job; 'again' when the member must read its claim again. */
  function enqueue(item: BatchObject, version: string, deadline: number) {
    const { member, outcome } = newMember(item, version, deadline);
    queue(member);
    return outcome;
  }

  function queue(member: Member, options: { alone?: boolean } = {}): void {
    try {
      batcher.add(member.table, paceOf(member.item), [member], options);
    } catch (error) {
      member.finish(asError(error));
    }
  }

  async function load(
    item: BatchObject,
    forcedBy: string | undefined,
    deadline: number,
  ): Promise<ObjectResult> {
    const table = tableId(item.destination);
    arriving.set(table, (arriving.get(table) ?? 0) + 1);
    let counted = true;
    const arrived = () => {
      if (!counted) return;
      counted = false;
      const left = (arriving.get(table) ?? 1) - 1;
      if (left > 0) arriving.set(table, left);
      else arriving.delete(table);
    };
    try {
      return await claimAndLoad(item, forcedBy, deadline, table, arrived);
    } finally {
      arrived();
    }
  }

  async function claimAndLoad(
    item: BatchObject,
    forcedBy: string | undefined,
    deadline: number,
    table: string,
    arrived: () => void,
  ): Promise<ObjectResult> {
    let { object } = item;
    let head: SourceHead | undefined;
    for (;;) {
      if (Date.now() >= deadline) {
        throw new TransientError(`${gsUri(object)}: out of time following its claim on ${table}`);
      }
      const state: ClaimState = await claims.read(object, table);
      const current = { ...item, object, head };
      const ownForced =
        forcedBy !== undefined && state.claim?.jobId.startsWith(forcedPrefix(current, forcedBy));
      let next: Followed = { kind: 'again' };
      if (state.claim && (forcedBy === undefined || ownForced)) {
        next = await follow(current, state.claim, deadline);
      }
      if (next.kind === 'result') return next.result;
      if (next.kind === 'again') {
        // Only an object about to be claimed is read: a duplicate costs no read.
        if (!head) {
          const checked = await checkObject(current, deadline);
          if (!('header' in checked)) return checked;
          head = current.head = checked;
        }
        arrived();
        const outcome =
          forcedBy === undefined
            ? await enqueue(current, state.version, deadline)
            : await runForced(current, forcedBy, state.version, deadline);
        if (outcome !== 'again') return outcome;
      }
      // A forced reload that failed goes again after a pause; so does a claim whose job is not there yet.
      const pause =
        next.kind === 'wait'
          ? next.ms
          : next.kind === 'again' && forcedBy !== undefined
            ? FORCED_RETRY_MS
            : 0;
      if (pause > 0) await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
      const fresh = await store.stat(object.bucket, object.name);
      if (!fresh || fresh.generation !== object.generation) {
        const reason = fresh
          ? `generation ${object.generation} was replaced by ${fresh.generation}, whose own event loads it`
          : 'object no longer exists';
        return { ...identify(object), outcome: 'skipped', reason };
      }
      object = fresh;
    }
  }

  /**
   * What the claim an object already carries came to, for a route that loads it alone
   * (`batch: false`): a coalesced job (before the route stopped batching) may have loaded it. Else
   * the claim version its own job's claim replaces.
   */
  async function followClaim(
    item: LoneObject,
    deadline: number,
  ): Promise<ObjectResult | { version: string }> {
    const table = tableId(item.destination);
    let { object } = item;
    for (;;) {
      const state = await claims.read(object, table);
      if (!state.claim) return { version: state.version };
      const next = await follow({ ...item, object } as BatchObject, state.claim, deadline);
      if (next.kind === 'result') return next.result;
      if (next.kind === 'again') return { version: state.version };
      if (next.kind === 'wait') await sleep(Math.min(next.ms, Math.max(0, deadline - Date.now())));
      if (Date.now() >= deadline)
        throw new TransientError(`${gsUri(object)}: out of time following its claim on ${table}`);
      const fresh = await store.stat(object.bucket, object.name);
      if (!fresh || fresh.generation !== object.generation)
        return { ...identify(object), outcome: 'skipped', reason: 'object no longer exists' };
      object = fresh;
    }
  }

  async function claimAlone(
    { object, destination }: LoneObject,
    jobId: string,
    version: string,
  ): Promise<'won' | 'lost' | 'gone'> {
    if (claims.recordsEveryLoad) return 'won';
    const claim: Claim = { jobId, at: Date.now(), destination: tableId(destination) };
    const [swap] = await claims.swap([{ object, claim, version }]);
    return swap?.kind ?? 'lost';
  }

  /**
   * A forced reload: its own job, claimed over any earlier claim. It starts at once, counted against
   * the pace, unless BigQuery said the destination is over a limit: then it waits its turn.
   */
  async function runForced(
    item: BatchObject,
    forcedBy: string,
    version: string,
    deadline: number,
  ): Promise<ObjectResult | 'again'> {
    const { member, outcome } = newMember(item, version, deadline, forcedPrefix(item, forcedBy));
    if (batcher.throttled(member.table)) {
      queue(member, { alone: true });
      return outcome;
    }
    batcher.debit(member.table, paceOf(item));
    // Every way a job ends finishes its members or queues them again (over a limit).
    void runJob(member.table, [member], jobIdOf([member]));
    return outcome;
  }

  /** Rejects what cannot join a job before any claim: a bad header, or (BigQuery) a broken gzip. */
  async function checkObject(
    item: BatchObject,
    deadline: number,
  ): Promise<ObjectResult | SourceHead> {
    const { object, route, destination } = item;
    const checked = await checkObjectHead(object, route, destination, services);
    if (checked === 'gone')
      return { ...identify(object), outcome: 'skipped', reason: 'object no longer exists' };
    if ('skip' in checked) return { ...identify(object), outcome: 'skipped', reason: checked.skip };
    const problem =
      'problem' in checked ? checked.problem : await warehouse.precheck?.(object, deadline);
    if (problem === undefined) return checked as SourceHead;
    const jobId = jobIdFor([object], destination, 'append');
    return reject(
      object,
      problem,
      buildJob([object], route, destination, config, jobId, deadline),
      services,
    );
  }

  return {
    load,
    followClaim,
    claimAlone,
    abort(reason) {
      batcher.abort(new TransientError(reason), (m) =>
        m.finish(new TransientError(`${reason}; ${gsUri(m.item.object)} was not claimed yet`)),
      );
    },
  };
}

/** A forced reload's own job id, or a coalesced job's. */
function jobIdOf(members: Member[]): string {
  const forced = members[0]?.forced;
  return forced === undefined ? newJobId(members) : `${forced}_${randomBytes(4).toString('hex')}`;
}

/** Says how BigQuery's limits changed a destination's pace. */
function describePaceChange({ destination, jobsPerDay, reason, heldMs }: PaceChange): string {
  if (heldMs !== undefined)
    return `load jobs into ${destination} held for ${heldMs / 1000} s (the pace stays at ${Math.round(jobsPerDay)} a day): ${reason}`;
  return `load jobs into ${destination} now paced at ${Math.round(jobsPerDay)} a day: ${reason}`;
}

/** A coalesced job's id: its members and destination, and a nonce, since the same set may go again. */
function newJobId(members: Member[]): string {
  const key = JSON.stringify({
    sources: members.map((m) => gsUri(m.item.object) + '#' + m.item.object.generation).sort(),
    destination: (members[0] as Member).table,
    nonce: randomBytes(8).toString('hex'),
  });
  return `ingest_${createHash('sha256').update(key).digest('hex')}`;
}

/** Job ids of a forced reload start with the one-object id and the request's message id. */
function forcedPrefix({ object, destination }: BatchObject, forcedBy: string): string {
  return jobIdFor([object], destination, 'append', forcedBy);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(errorMessage(error));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
