import { TransientError } from '../core/errors';
import { headerShape } from '../objects/jobs';
import type { ObjectResult } from '../objects/outcomes';
import { gsUri } from '../stores/store';
import { tableId } from '../warehouses/warehouse';
import { asError, type BatchContext } from './context';
import type { BatchObject, Member } from './types';

/** A member and the outcome its `finish` settles; it answers 503 when its time budget runs out first. */
export function newMember(item: BatchObject, version: string, deadline: number, forced?: string) {
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
export function enqueue(ctx: BatchContext, item: BatchObject, version: string, deadline: number) {
  const { member, outcome } = newMember(item, version, deadline);
  queue(ctx, member);
  return outcome;
}

export function queue(ctx: BatchContext, member: Member, options: { alone?: boolean } = {}): void {
  try {
    ctx.batcher.add(member.table, ctx.paceOf(member.item), [member], options);
  } catch (error) {
    member.finish(asError(error));
  }
}
