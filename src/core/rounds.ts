/** The round a caller joined: its items so far, the latest deadline among them, its result. */
interface Round<T, R> {
  items: T[];
  deadline: number;
  result: Promise<R>;
}

interface Key<T, R> {
  running?: Promise<unknown>;
  /** The round that starts when the running one ends; callers arriving meanwhile join it. */
  next?: Round<T, R>;
}

/**
 * Work per key, one round at a time: a caller starts a round when none runs for its key, else joins
 * the next one, which starts with everything that joined it once the running round ends. So n callers
 * arriving together cost two or three rounds, not n.
 */
export class Rounds<T, R> {
  private readonly keys = new Map<string, Key<T, R>>();

  /** Whether a round waits to start after the running one for this key. */
  waiting(key: string): boolean {
    return this.keys.get(key)?.next !== undefined;
  }

  /** The result of the round `items` joined, run by `work` with all that round's items. */
  join(
    key: string,
    items: T[],
    deadline: number,
    work: (items: T[], deadline: number) => Promise<R>,
  ): Promise<R> {
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = {}));
    let round = state.next;
    if (!round) {
      const created: Round<T, R> = { items: [], deadline, result: Promise.resolve() as Promise<R> };
      const current = state;
      const start = async () => {
        await current.running?.catch(() => undefined);
        if (current.next === created) current.next = undefined;
        const run = work(created.items, created.deadline);
        current.running = run;
        try {
          return await run;
        } finally {
          if (current.running === run) current.running = undefined;
          if (!current.running && !current.next) this.keys.delete(key);
        }
      };
      created.result = start();
      state.next = round = created;
    }
    round.items.push(...items);
    round.deadline = Math.max(round.deadline, deadline);
    return round.result;
  }
}
