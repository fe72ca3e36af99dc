import type { Claim } from '../stores/claims';
import { TransientError } from '../core/errors';
import { buildJob } from '../objects/jobs';
import { gsUri } from '../stores/store';
import type { ClaimedLoadResult, LoadJob } from '../warehouses/warehouse';
import { asError, type BatchContext } from './context';
import { settleJob } from './settle';
import type { Member } from './types';

/** Runs one job for members not yet settled; hands back what must go again. Never rejects. */
export async function runJob(
  ctx: BatchContext,
  table: string,
  members: Member[],
  jobId: string,
): Promise<void> {
  const {
    batcher,
    inFlight,
    services: { config, warehouse, claims },
  } = ctx;
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
      won = await claimAll(ctx, live, claim);
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
    await settleJob(ctx, table, won, job, result, claim.at);
  })().catch((error: unknown) => members.forEach((m) => m.finish(asError(error))));
  inFlight.set(jobId, run);
  try {
    await run;
  } finally {
    inFlight.delete(jobId);
  }
}

/** Swaps each member's claim to `claim`; those that lost it follow the claim that won. */
async function claimAll(ctx: BatchContext, members: Member[], claim: Claim): Promise<Member[]> {
  const swaps = await ctx.services.claims.swap(
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
