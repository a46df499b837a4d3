/** One-line descriptions of plan steps: the one place that words a step, for `validate`, `render --all-steps` and `status`. */
import {formatDurationMs} from '../release/duration.js'
import {assertNever} from '../rollout/core/assert-never.js'
import type {Step} from '../rollout/core/types.js'

/**
 * How a step reads. `spec` (validate, render) echoes the spec: `setWeight 20`, `pause 2m`,
 * `pause (until canary step / canary promote)`. `status` (`canary status`, `--json`) names the
 * total and whole seconds: `setWeight 20/100`, `pause 120 s`; past the last step, `all steps done`.
 * Both wordings are public output, so they stay as they are.
 */
export function describeStep(step: Step | undefined, style: {readonly kind: 'spec'} | {readonly kind: 'status'; readonly totalWeight: number} = {kind: 'spec'}): string {
  if (step === undefined) return 'all steps done'
  const status = style.kind === 'status'
  switch (step.kind) {
    case 'setWeight':
      return status ? `setWeight ${step.weight}/${style.totalWeight}` : `setWeight ${step.weight}`
    case 'pause':
      if (step.durationMs === undefined) return status ? 'pause until canary step or canary promote' : 'pause (until canary step / canary promote)'
      return status ? `pause ${Math.round(step.durationMs / 1000)} s` : `pause ${formatDurationMs(step.durationMs)}`
    default:
      return assertNever(step)
  }
}
