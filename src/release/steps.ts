/**
 * The plan: reading the `steps` list (full form or the `[20, 50, 100]` shorthand) and the weight
 * each step leaves in place. Pure; no YAML, no I/O.
 */
import {parseDurationMs} from './duration.js'
import {didYouMean} from '../config-file/did-you-mean.js'
import type {Step} from './release.js'

/** A problem in one step, with the path below `spec.steps`. */
export interface StepProblem {
  /** Path segments below `spec.steps`, e.g. `[2, 'setWeight']`. */
  readonly path: readonly (string | number)[]
  /** What is wrong and what was expected. */
  readonly message: string
  /** Did-you-mean or fix. */
  readonly suggestion?: string
}

const STEP_KEYS = ['setWeight', 'pause']

/** Reads raw steps; checks each weight against `totalWeight` and that the last weight is the total. */
export function readSteps(raw: readonly unknown[], totalWeight: number): {steps: Step[]; problems: StepProblem[]} {
  const steps: Step[] = []
  const problems: StepProblem[] = []
  const weightProblem = (index: number, path: (string | number)[], weight: unknown): void => {
    if (typeof weight !== 'number' || !Number.isInteger(weight)) {
      problems.push({path, message: `expected a whole-number weight from 0 to ${totalWeight}, got ${JSON.stringify(weight)}`, suggestion: totalWeight === 100 ? 'for sub-percent steps set spec.totalWeight (e.g. 1000) and scale the weights' : undefined})
      return
    }
    if (weight < 0 || weight > totalWeight) {
      problems.push({path, message: `weight ${weight} is out of range: expected 0 to ${totalWeight} (spec.totalWeight)`})
      return
    }
    steps[index] = {kind: 'setWeight', weight}
  }
  raw.forEach((item, index) => {
    if (typeof item === 'number') {
      weightProblem(index, [index], item)
      return
    }
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      problems.push({path: [index], message: `expected a weight, {setWeight: N} or {pause: {duration: …}}, got ${JSON.stringify(item)}`})
      return
    }
    const keys = Object.keys(item)
    const unknown = keys.filter((key) => !STEP_KEYS.includes(key))
    for (const key of unknown) {
      const guess = didYouMean(key, STEP_KEYS)
      problems.push({path: [index, key], message: `unknown step field "${key}": expected setWeight or pause`, suggestion: guess === undefined ? undefined : `did you mean "${guess}"?`})
    }
    if (unknown.length > 0) return
    if (keys.length !== 1) {
      problems.push({path: [index], message: `a step has exactly one of setWeight or pause, got ${keys.length === 0 ? 'none' : keys.join(' and ')}`})
      return
    }
    const record = item as Record<string, unknown>
    if ('setWeight' in record) {
      weightProblem(index, [index, 'setWeight'], record.setWeight)
      return
    }
    const pause = record.pause
    if (pause === null || pause === undefined) {
      steps[index] = {kind: 'pause'}
      return
    }
    if (typeof pause !== 'object' || Array.isArray(pause)) {
      problems.push({path: [index, 'pause'], message: `expected {duration: 2m} or {} (wait for canary step/promote), got ${JSON.stringify(pause)}`})
      return
    }
    const pauseKeys = Object.keys(pause)
    for (const key of pauseKeys.filter((k) => k !== 'duration')) {
      problems.push({path: [index, 'pause', key], message: `unknown pause field "${key}": expected duration`, suggestion: didYouMean(key, ['duration']) === undefined ? undefined : 'did you mean "duration"?'})
    }
    const duration = (pause as Record<string, unknown>).duration
    if (duration === undefined) {
      if (pauseKeys.length === 0) steps[index] = {kind: 'pause'}
      return
    }
    const durationMs = typeof duration === 'string' ? parseDurationMs(duration) : undefined
    if (durationMs === undefined) {
      problems.push({path: [index, 'pause', 'duration'], message: `expected a duration such as 30s, 2m or 1h, got ${JSON.stringify(duration)}`})
      return
    }
    if (pauseKeys.length === 1) steps[index] = {kind: 'pause', durationMs}
  })
  if (problems.length === 0) {
    const weightsInOrder = steps.filter((step): step is Extract<Step, {kind: 'setWeight'}> => step.kind === 'setWeight')
    const last = weightsInOrder.at(-1)
    if (last === undefined) {
      problems.push({path: [], message: 'the plan has no setWeight step: expected at least one, ending at the total weight', suggestion: `add "- setWeight: ${totalWeight}"`})
    } else if (last.weight !== totalWeight) {
      problems.push({path: [steps.lastIndexOf(last)], message: `the last weight is ${last.weight}: expected the plan to end at the total weight ${totalWeight} (full promotion)`, suggestion: `add "- setWeight: ${totalWeight}" as the last weight step`})
    }
  }
  return {steps, problems}
}
