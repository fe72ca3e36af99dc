import { createHash, randomBytes } from 'node:crypto';
import { jobIdFor } from '../objects/routing';
import { gsUri } from '../stores/store';
import type { BatchObject, Member } from './types';

/** A forced reload's own job id, or a coalesced job's. */
export function jobIdOf(members: Member[]): string {
  const forced = members[0]?.forced;
  return forced === undefined ? newJobId(members) : `${forced}_${randomBytes(4).toString('hex')}`;
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
export function forcedPrefix({ object, destination }: BatchObject, forcedBy: string): string {
  return jobIdFor([object], destination, 'append', forcedBy);
}
