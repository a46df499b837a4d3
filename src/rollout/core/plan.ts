/**
 * Weights derived from the plan. The current weight is never stored: it follows from the step
 * index (Argo Rollouts' `GetCurrentSetWeight` does the same), an explicit `step --weight`, or the phase.
 */
import {assertNever} from './assert-never.js'
import type {Plan, RolloutState} from './types.js'
import {weights, type Weights} from './weights.js'

/** Canary weight in force at `stepIndex`: the last `setWeight` at or before it, 0 before the first (pauses keep the weight they follow). `render` uses it too. */
export function currentWeight(plan: Pick<Plan, 'steps'>, stepIndex: number): number {
  let weight = 0
  const last = Math.min(stepIndex, plan.steps.length - 1)
  for (let i = 0; i <= last; i++) {
    const step = plan.steps[i]
    if (step === undefined) break
    switch (step.kind) {
      case 'setWeight':
        weight = step.weight
        break
      case 'pause':
        break
      default:
        assertNever(step)
    }
  }
  return weight
}

/** The canary weight the rollout wants now, given its phase. */
export function desiredWeight(state: RolloutState, plan: Plan): number {
  switch (state.phase) {
    case 'Starting':
    case 'RollingBack':
    case 'RolledBack':
    case 'Aborted':
    case 'Inconclusive':
    case 'Failed':
      return 0
    case 'Promoting':
      return plan.totalWeight
    case 'Promoted':
      // After promotion the canary is the stable version; routing is back to "stable takes all".
      return 0
    case 'Progressing':
    case 'Paused':
      return state.weightOverride ?? currentWeight(plan, state.stepIndex)
    default:
      return assertNever(state.phase)
  }
}

/** `desiredWeight` as a Weights value. */
export function desiredWeights(state: RolloutState, plan: Plan): Weights {
  return weights(desiredWeight(state, plan), plan.totalWeight)
}
