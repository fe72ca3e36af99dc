/** A Plan as a bash script: each step one line, words quoted for a POSIX shell. Pure: no I/O. */
import { AGENT_RETRY_SECONDS, type Plan, type Step, type Word } from './plan';

/** A word for a POSIX shell: as it is when that is safe, else in single quotes. */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function renderWord(word: Word): string {
  if (typeof word === 'string') return shellQuote(word);
  return word
    .map((part) =>
      typeof part === 'string' ? (part === '' ? '' : shellQuote(part)) : `"$${part.ref}"`,
    )
    .join('');
}

function renderArgv(argv: readonly Word[]): string {
  return argv.map(renderWord).join(' ');
}

/** One step as a line of a bash script (a `find`: two lines). */
export function renderStep(step: Step): string {
  switch (step.kind) {
    case 'run':
      return renderArgv(step.argv);
    case 'ensure': {
      const retry =
        step.retryWhile === undefined ? '' : `retry_while ${shellQuote(step.retryWhile)} `;
      const check =
        step.exists === 'prints'
          ? `[[ -n "$(${renderArgv(step.check)})" ]]`
          : `${renderArgv(step.check)} >/dev/null 2>&1`;
      return `${check} || ${retry}${renderArgv(step.create)}`;
    }
    case 'capture':
      return `${step.into}="$(${renderArgv(step.argv)})"`;
    case 'find':
      return [
        `${step.into}="$(${renderArgv(step.argv)})"`,
        `[[ -n $${step.into} ]] || ${step.into}="$(${renderArgv(step.create)})"`,
      ].join('\n');
  }
}

/** `retry_while TEXT COMMAND...`: the script's form of an ensure step's `retryWhile`. */
const RETRY_WHILE = [
  `# retry_while TEXT COMMAND...: runs COMMAND; while it fails saying TEXT, runs it again after ${AGENT_RETRY_SECONDS.join(', ')} s.`,
  'retry_while() {',
  '  local text=$1 delay output',
  '  shift',
  `  for delay in ${AGENT_RETRY_SECONDS.join(' ')} ''; do`,
  '    if output=$("$@" 2>&1); then printf \'%s\\n\' "$output"; return 0; fi',
  '    printf \'%s\\n\' "$output" >&2',
  '    if [[ -z $delay || $output != *"$text"* ]]; then return 1; fi',
  '    echo "not ready yet; trying again in $delay s" >&2',
  '    sleep "$delay"',
  '  done',
  '}',
];

/** The whole plan as a bash script that stops at the first failure. */
export function renderScript(plan: Plan): string {
  const lines = ['#!/usr/bin/env bash', 'set -euo pipefail'];
  const steps = plan.sections.flatMap((s) => s.steps);
  if (steps.some((s) => s.kind === 'ensure' && s.retryWhile !== undefined))
    lines.push('', ...RETRY_WHILE);
  for (const section of plan.sections) {
    lines.push('', `# ${section.title}`, ...section.steps.map(renderStep));
  }
  return `${lines.join('\n')}\n`;
}
