/**
 * Eventarc trigger definitions (eventarc/*.yaml) -> the gcloud commands that create them and set the
 * retry and dead-letter policy of the Pub/Sub subscription each trigger delivers through. Pure: no I/O.
 * The parts live in deploy/: placeholders, definition, trigger-plan, plan (steps) and script.
 */
export {
  PLACEHOLDERS,
  PLACEHOLDER_SOURCES,
  resolveValues,
  requireValues,
  type Env,
  type Placeholder,
  type Values,
} from './placeholders';
export { checkDefinition, parseDefinition, readDefinition, type Definition } from './definition';
export {
  AGENT_RETRY_SECONDS,
  resolveArgv,
  type Plan,
  type Ref,
  type Step,
  type Word,
} from './plan';
export {
  AGENT_NOT_READY,
  DEAD_LETTER_RETENTION,
  PROJECT_NUMBER,
  planTriggers,
  subscriptionVariable,
} from './trigger-plan';
export { renderScript, renderStep, shellQuote } from './script';
export {
  CHANNEL,
  QUOTA_METRIC,
  REJECTED_METRIC,
  alertTargets,
  planAlerts,
  type AlertsInput,
} from './alerts';
