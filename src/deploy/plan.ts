/**
 * A plan: the gcloud commands to run, in titled sections, as steps whose words may join values an
 * earlier step captured. Pure: no I/O.
 */

/**
 * The waits, in seconds, before each new attempt at a create that failed with AGENT_NOT_READY
 * (trigger-plan.ts).
 */
export const AGENT_RETRY_SECONDS = [20, 40, 80, 160] as const;

/** A reference to a value an earlier `capture` step printed, such as the project number. */
export interface Ref {
  ref: string;
}
/** One command-line argument: plain text, or text joined with captured values. */
export type Word = string | readonly (string | Ref)[];

export type Step =
  /** Run the command; a failure stops. */
  | { kind: 'run'; argv: Word[] }
  /**
   * Run `create` unless `check` succeeds (the resource exists already, and is kept as it is); with
   * `exists: 'prints'`, unless `check` prints something (a list that finds it). With `retryWhile`, a
   * create whose output contains that text is run again after each of AGENT_RETRY_SECONDS.
   */
  | { kind: 'ensure'; check: Word[]; create: Word[]; retryWhile?: string; exists?: 'prints' }
  /** Run the command and keep its trimmed output under `into`. */
  | { kind: 'capture'; into: string; argv: Word[] }
  /**
   * Keep the trimmed output of `argv` (a list that finds the resource) under `into`; when it prints
   * nothing, run `create` and keep what it prints instead.
   */
  | { kind: 'find'; into: string; argv: Word[]; create: Word[] };

export interface Plan {
  /** What each group of steps does, shown as a comment before it. */
  sections: { title: string; steps: Step[] }[];
}

/** The argument vector of a step's command, with captured values filled in. */
export function resolveArgv(
  argv: readonly Word[],
  captured: Readonly<Record<string, string>>,
): string[] {
  return argv.map((word) => {
    if (typeof word === 'string') return word;
    return word
      .map((part) => {
        if (typeof part === 'string') return part;
        const value = captured[part.ref];
        if (value === undefined) throw new Error(`${part.ref} was not captured before it is used`);
        return value;
      })
      .join('');
  });
}
