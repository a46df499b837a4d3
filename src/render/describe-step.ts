/** One-line descriptions of plan steps, for `validate`, `render --all-steps` and status output. */
import {formatDurationMs} from '../release/duration.js'
import type {Step} from '../release/release.js'

/** `setWeight 20`, `pause 2m`, `pause (until canary step / canary promote)`. */
export function describeStep(step: Step): string {
  if (step.kind === 'setWeight') return `setWeight ${step.weight}`
  return step.durationMs === undefined ? 'pause (until canary step / canary promote)' : `pause ${formatDurationMs(step.durationMs)}`
}
