import type { Claim } from '../stores/claims';
import { buildJob, namesObject } from '../objects/jobs';
import { identify, type ObjectResult } from '../objects/outcomes';
import { reject } from '../objects/quarantine';
import { gsUri } from '../stores/store';
import type { BatchContext } from './context';
import type { BatchObject } from './types';

/** `wait`: the claim's job may still be inserted; `reread`: the claim may have changed; `again`: claim anew. */
export type Followed =
  | { kind: 'result'; result: ObjectResult }
  | { kind: 'wait'; ms: number }
  | { kind: 'reread' | 'again' };

/** Follows the claim an object carries to what its job came to. */
export async function follow(
  ctx: BatchContext,
  item: BatchObject,
  claim: Claim,
  deadline: number,
): Promise<Followed> {
  const { inFlight, jobs, services } = ctx;
  const { config, claims } = services;
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
