import { buildJob, checkObjectHead } from '../../objects/jobs';
import { identify, type ObjectResult } from '../../objects/outcomes';
import { reject, type Quarantined } from '../../objects/quarantine';
import { jobIdFor } from '../../objects/routing';
import { gsUri, type StoredObject } from '../../stores/store';
import type { SourceHead } from '../../schema/columns';
import { isAmong, type Day } from './day';
import type { Listing } from './members';

/** The objects whose events asked for the rebuild that can join it; results for the others. */
export async function checkTriggers(
  triggers: StoredObject[],
  listed: Listing,
  day: Day,
): Promise<{ results: ObjectResult[]; live: StoredObject[] }> {
  const { route, destination, services, deadline, forcedBy } = day;
  const results: ObjectResult[] = [];
  const live: StoredObject[] = [];
  for (const object of triggers) {
    const quarantined = listed.quarantined.get(object.name);
    if (quarantined?.generation === object.generation) {
      results.push(rejectedEarlier(object, quarantined));
      continue;
    }
    const checked = await checkSource(object, day);
    if (checked === 'gone') {
      results.push({ ...identify(object), outcome: 'skipped', reason: 'object no longer exists' });
    } else if ('problem' in checked) {
      const jobId = jobIdFor([object], destination, route.write, forcedBy);
      const job = buildJob([object], route, destination, services.config, jobId, deadline);
      results.push(await reject(object, checked.problem, job, services));
    } else {
      live.push(object);
    }
  }
  return { results, live };
}

// Heads of the object generations this instance has checked, so that a day's rebuilds read each file once.
const HEADS_KEPT = 20_000;
const checkedHeads = new WeakMap<object, Map<string, SourceHead>>();

/** The object's head, checked against its table (cached once it passed), its problem, or 'gone'. */
async function checkSource(
  object: StoredObject,
  { route, destination, services }: Day,
): Promise<SourceHead | { problem: string } | 'gone'> {
  let heads = checkedHeads.get(services.store);
  if (!heads) checkedHeads.set(services.store, (heads = new Map()));
  const key = `${gsUri(object)}#${object.generation}`;
  const known = heads.get(key);
  if (known) return known;
  const checked = await checkObjectHead(object, route, destination, services);
  if (checked === 'gone' || 'problem' in checked) return checked;
  // A partition route never skips: a header-only file loads its 0 rows.
  if ('skip' in checked) return { problem: checked.skip };
  if (heads.size >= HEADS_KEPT) heads.delete(heads.keys().next().value as string);
  heads.set(key, checked);
  return checked;
}

/**
 * The sources that can join the day's job, each with its head: a sibling whose own head shows it
 * cannot load is quarantined on its own (the objects the request asked for were checked already);
 * one that is gone is left out.
 */
export async function sourcesWithHeads(
  sources: StoredObject[],
  live: StoredObject[],
  day: Day,
  results: ObjectResult[],
): Promise<{ sources: StoredObject[]; heads: SourceHead[] }> {
  const kept: StoredObject[] = [];
  const heads: SourceHead[] = [];
  for (const object of sources) {
    const checked = await checkSource(object, day);
    if (checked === 'gone') continue;
    if ('problem' in checked) {
      const rejected = await reject(object, checked.problem, undefined, day.services);
      if (isAmong(object, live)) results.push(rejected);
      continue;
    }
    kept.push(object);
    heads.push(checked);
  }
  return { sources: kept, heads };
}

function rejectedEarlier(object: StoredObject, copy: Quarantined): ObjectResult {
  return { ...identify(object), outcome: 'rejected', reason: `rejected earlier: ${copy.reason}` };
}
