import { namesObject } from '../../objects/jobs';
import { jobIdFor } from '../../objects/routing';
import type { StoredObject } from '../../stores/store';
import type { LoadJob } from '../../warehouses/warehouse';
import type { SourceHead } from '../../schema/columns';
import type { Day } from './day';

/**
 * The sources of a rejected rebuild that are themselves bad. A reason naming exactly one source
 * blames it; one that names several, or none, is split by loading halves of the suspects on trial
 * (writing nothing) until each bad file is alone. Should no half fail alone, the objects the request
 * asked for are blamed, as a last resort that always makes progress.
 */
export async function findCulprits(
  job: LoadJob,
  reason: string,
  live: StoredObject[],
  day: Day,
): Promise<{ object: StoredObject; reason: string }[]> {
  const named = job.sources.filter((o) => namesObject(reason, o));
  if (named.length === 1) return [{ object: named[0] as StoredObject, reason }];
  const suspects = named.length > 1 ? named : job.sources;
  if (suspects.length === 1) return [{ object: suspects[0] as StoredObject, reason }];
  const half = Math.ceil(suspects.length / 2);
  const found = [
    ...(await bisect(job, suspects.slice(0, half), day)),
    ...(await bisect(job, suspects.slice(half), day)),
  ];
  return found.length > 0 ? found : live.map((object) => ({ object, reason }));
}

async function bisect(
  job: LoadJob,
  suspects: StoredObject[],
  day: Day,
): Promise<{ object: StoredObject; reason: string }[]> {
  const heads = suspects.map((o) => job.heads?.[job.sources.indexOf(o)] as SourceHead);
  const trialId = jobIdFor(suspects, job.destination, job.write, day.forcedBy, {
    rebuiltFor: suspects,
    after: `trial of ${job.jobId}`,
  });
  const trial = { ...job, jobId: trialId, sources: suspects, heads, trial: true };
  const result = await day.services.warehouse.load(trial);
  if (result.outcome !== 'rejected') return [];
  const named = suspects.filter((o) => namesObject(result.reason, o));
  if (suspects.length === 1 || named.length === 1) {
    return [{ object: (named[0] ?? suspects[0]) as StoredObject, reason: result.reason }];
  }
  const half = Math.ceil(suspects.length / 2);
  return [
    ...(await bisect(job, suspects.slice(0, half), day)),
    ...(await bisect(job, suspects.slice(half), day)),
  ];
}
