import {describe, expect, it} from 'vitest'

import {decide, newRollout} from '../../../src/rollout/core/decide.js'
import {currentWeight, desiredWeight} from '../../../src/rollout/core/plan.js'
import type {Observation, RolloutState} from '../../../src/rollout/core/types.js'
import {weights} from '../../../src/rollout/core/weights.js'
import {INTERVAL_MS, aPlan, aRollout, failing, healthy, observe, pause, setWeight, version, windowOf} from '../builders.js'

const plan = aPlan()

/** Applies decisions until the rollout needs a new observation, like the engine's immediate re-ticks. */
function settle(state: RolloutState, observation: Observation) {
  let decision = decide(state, observation, plan)
  const actions = [...decision.actions]
  while (decision.immediate) {
    decision = decide(decision.next, {nowMs: observation.nowMs, weights: observation.weights}, plan)
    actions.push(...decision.actions)
  }
  return {next: decision.next, actions, refusal: decision.refusal}
}

describe('current weight is derived from the plan', () => {
  it.each([
    [[setWeight(20), pause(), setWeight(50)], 0, 20],
    [[setWeight(20), pause(), setWeight(50)], 1, 20],
    [[setWeight(20), pause(), setWeight(50)], 2, 50],
    [[pause(), setWeight(50)], 0, 0],
    [[setWeight(20), setWeight(50)], 9, 50],
  ])('steps %j at index %i give weight %i', (steps, index, expected) => {
    expect(currentWeight(aPlan(steps), index)).toBe(expected)
  })

  it('lets step --weight override the plan until the plan advances', () => {
    expect(desiredWeight(aRollout({stepIndex: 0, weightOverride: 35}), plan)).toBe(35)
  })
})

describe('starting a rollout', () => {
  it('reconciles the router and deploys the canary first', () => {
    const state = newRollout({name: 'my-app', stableImage: 'acme/my-app:v1', canaryImage: 'acme/my-app:v2', nowMs: 0})
    const {next, actions} = decide(state, {nowMs: 0}, plan)
    expect(actions).toEqual([{type: 'reconcileRouter'}, {type: 'deployCanary', image: 'acme/my-app:v2'}])
    expect(next.phase).toBe('Starting')
  })

  it('moves a ready canary to the first step weight', () => {
    const state = aRollout({phase: 'Starting'})
    const {next, actions} = decide(state, observe(1000, 0), plan)
    expect(next.phase).toBe('Progressing')
    expect(actions).toEqual([{type: 'setWeights', weights: weights(20)}])
    expect(next.windowStartMs).toBe(1000)
  })

  it('gives up on a canary that is not ready by the progress deadline, without touching traffic', () => {
    const state = aRollout({phase: 'Starting'})
    const {next, actions} = settle(state, {nowMs: 60_000, weights: weights(0), canary: {ready: false, readyReplicas: 0, replicas: 1, reason: 'probe GET /healthz refused'}})
    expect(next.phase).toBe('Failed')
    expect(next.endMessage).toMatch(/not ready after 60 s \(probe GET \/healthz refused\)/)
    expect(actions.map((a) => a.type)).toEqual(['setWeights', 'finalizeRouter', 'removeCanary'])
  })

  it('stops at once when the target says the canary will never be ready', () => {
    const {next} = settle(aRollout({phase: 'Starting'}), {nowMs: 5, canary: {ready: false, readyReplicas: 0, replicas: 1, failed: true, reason: 'crash loop'}})
    expect(next.phase).toBe('Failed')
  })
})

describe('following the plan', () => {
  const at20 = aRollout({stepIndex: 0, windowStartMs: 0})

  it.each([
    ['waits for the first interval before judging', observe(INTERVAL_MS - 1, 20, healthy()), 0, []],
    ['advances after one successful look', observe(INTERVAL_MS, 20, healthy()), 1, [{type: 'setWeights', weights: weights(50)}]],
    ['holds when there is not enough data yet', observe(INTERVAL_MS, 20, windowOf(version(10), version(40))), 0, []],
    ['holds when metrics cannot be read', observe(INTERVAL_MS, 20, undefined, {metrics: {error: 'connection refused'}}), 0, []],
  ])('%s', (_name, observation, stepIndex, actions) => {
    const decision = decide(at20, observation, plan)
    expect(decision.next.phase).toBe('Progressing')
    expect(decision.next.stepIndex).toBe(stepIndex)
    expect(decision.actions).toEqual(actions)
  })

  it('sets the weight again when the router reports another one (read back, never assumed)', () => {
    const decision = decide(at20, observe(5, 0), plan)
    expect(decision.actions).toEqual([{type: 'setWeights', weights: weights(20)}])
    expect(decision.next.decisions.at(-1)?.event).toBe('weightCorrected')
  })

  it('rolls back a canary worse than stable: weight 0 first, then finalize and remove', () => {
    const {next, actions} = settle(at20, observe(INTERVAL_MS, 20, failing()))
    expect(next.phase).toBe('RolledBack')
    expect(actions[0]).toEqual({type: 'setWeights', weights: weights(0)})
    expect(actions.map((a) => a.type)).toEqual(['setWeights', 'setWeights', 'finalizeRouter', 'removeCanary'])
    expect(next.decisions.some((d) => d.event === 'analysis' && d.analysis?.verdict === 'Failed')).toBe(true)
  })

  it('rolls back a canary that turned bad late in a long pause, from its recent window', () => {
    const paused = aPlan([setWeight(20), pause(3_600_000), setWeight(100)])
    const atPause = aRollout({stepIndex: 1, windowStartMs: 0, looks: 100})
    const now = 1_000_000
    // 1,000 s at 20 %: the whole window's 0.65 % hides 30 s at 5 %.
    const whole = windowOf(version(20_000, 100 + 30), version(80_000, 400), 0, now)
    const recent = windowOf(version(600, 30), version(2400, 12), now - 30_000, now)
    const diluted = decide(atPause, observe(now, 20, whole), paused)
    expect(diluted.next.phase).toBe('Progressing')
    expect(diluted.next.lastAnalysis?.verdict).toBe('Successful')
    const caught = decide(atPause, {...observe(now, 20, whole), recentMetrics: recent}, paused)
    expect(caught.next.phase).toBe('RollingBack')
    expect(caught.actions[0]).toEqual({type: 'setWeights', weights: weights(0)})
    expect(caught.next.endMessage).toMatch(/last 30 s: canary errors more often than stable/)
  })

  it('ignores a recent window that starts before the current weight was set', () => {
    const at20Later = aRollout({stepIndex: 0, windowStartMs: 990_000})
    const stale = windowOf(version(600, 30), version(2400, 12), 970_000, 1_000_000)
    const decision = decide(at20Later, {...observe(1_000_000, 20, healthy()), recentMetrics: stale}, plan)
    expect(decision.next.lastAnalysis?.measurements.some((m) => m.window !== undefined)).toBe(false)
    expect(decision.next.phase).toBe('Progressing')
  })

  it('tolerates a broken threshold until it is broken failureLimit looks in a row', () => {
    const lenient = aPlan(undefined, {failureLimit: 2})
    // 3 % errors on both: below the 99 % threshold, but no worse than stable.
    const bad = windowOf(version(1000, 30), version(4000, 120))
    const first = decide(at20, observe(INTERVAL_MS, 20, bad), lenient)
    expect(first.next.phase).toBe('Progressing')
    expect(first.next.consecutiveBreaches).toBe(1)
    const second = decide(first.next, observe(2 * INTERVAL_MS, 20, bad), lenient)
    expect(second.next.phase).toBe('RollingBack')
  })

  it('ends Inconclusive (and rolls back) when a weight never gets enough data by the deadline', () => {
    const {next} = settle(at20, observe(10 * INTERVAL_MS, 20, windowOf(version(3), version(12))))
    expect(next.phase).toBe('Inconclusive')
  })

  it('enters an indefinite pause as Paused and stays there', () => {
    const paused = aPlan([setWeight(20), pause(), setWeight(100)])
    const first = decide(at20, observe(INTERVAL_MS, 20, healthy()), paused)
    expect(first.next.phase).toBe('Paused')
    const later = decide(first.next, observe(5 * INTERVAL_MS, 20, healthy()), paused)
    expect(later.next.phase).toBe('Paused')
    expect(later.next.stepIndex).toBe(1)
  })

  it('holds a timed pause for its duration', () => {
    const timed = aPlan([setWeight(20), pause(30_000), setWeight(100)])
    const inPause = aRollout({stepIndex: 1, stepStartedAtMs: 0, windowStartMs: 0})
    expect(decide(inPause, observe(20_000, 20, healthy()), timed).next.stepIndex).toBe(1)
    expect(decide(inPause, observe(30_000, 20, healthy()), timed).next.stepIndex).toBe(2)
  })

  it('promotes after the last step: all traffic to the canary, then it becomes stable', () => {
    const atLast = aRollout({stepIndex: 2, windowStartMs: 0})
    const {next, actions} = settle(atLast, observe(INTERVAL_MS, 100, windowOf(version(1000, 1), version(0))))
    expect(next.phase).toBe('Promoted')
    expect(next.stableImage).toBe('acme/my-app:v2')
    expect(actions).toEqual([
      {type: 'setWeights', weights: weights(100)},
      {type: 'promoteTarget', image: 'acme/my-app:v2'},
      {type: 'finalizeRouter', outcome: 'promoted'},
      {type: 'removeCanary'},
    ])
  })
})

describe('manual commands go through the same reducer', () => {
  const at20 = aRollout({stepIndex: 0, windowStartMs: 0})

  it.each([
    ['step on a healthy canary advances', {kind: 'step', force: false}, healthy(), undefined, 1],
    ['step on a failing canary is refused', {kind: 'step', force: false}, failing(), 'analysisFailing', 0],
    ['step without enough data is refused', {kind: 'step', force: false}, windowOf(version(5), version(20)), 'notEnoughData', 0],
    ['step --force on a failing canary advances', {kind: 'step', force: true}, failing(), undefined, 1],
    ['step --weight lower needs no gate', {kind: 'step', weight: 10, force: false}, failing(), undefined, 0],
    ['step --weight higher is gated', {kind: 'step', weight: 40, force: false}, windowOf(version(5), version(20)), 'notEnoughData', 0],
    ['step --weight beyond the total is refused', {kind: 'step', weight: 101, force: true}, healthy(), 'invalidWeight', 0],
  ] as const)('%s', (_name, intent, metrics, refusal, stepIndex) => {
    const decision = decide(at20, observe(1000, 20, metrics, {intent}), plan)
    expect(decision.refusal?.kind).toBe(refusal)
    expect(decision.next.stepIndex).toBe(stepIndex)
    expect(decision.next.phase).toBe('Progressing')
  })

  it('step --weight sets that weight now and restarts the analysis window', () => {
    const decision = decide(at20, observe(1000, 20, healthy(), {intent: {kind: 'step', weight: 35, force: false}}), plan)
    expect(decision.actions).toEqual([{type: 'setWeights', weights: weights(35)}])
    expect(decision.next.weightOverride).toBe(35)
    expect(decision.next.windowStartMs).toBe(1000)
  })

  it('step at an indefinite pause moves on to the next step', () => {
    const paused = aPlan([setWeight(20), pause(), setWeight(100)])
    const state = aRollout({phase: 'Paused', stepIndex: 1})
    const decision = decide(state, observe(1000, 20, healthy(), {intent: {kind: 'step', force: false}}), paused)
    expect(decision.next.stepIndex).toBe(2)
    expect(decision.actions).toEqual([{type: 'setWeights', weights: weights(100)}])
  })

  it('promote on a healthy canary promotes', () => {
    expect(settle(at20, observe(1000, 20, healthy(), {intent: {kind: 'promote', force: false}})).next.phase).toBe('Promoted')
  })

  it('abort sends traffic back to stable and is idempotent', () => {
    const {next, actions} = settle(at20, observe(1000, 20, healthy(), {intent: {kind: 'abort'}}))
    expect(next.phase).toBe('Aborted')
    expect(actions.at(-1)).toEqual({type: 'removeCanary'})
    const again = decide(next, {nowMs: 2000, intent: {kind: 'abort'}}, plan)
    expect(again.next).toBe(next)
    expect(again.actions).toEqual([])
    expect(again.refusal).toBeUndefined()
  })

  it('step after the rollout ended is refused as not in progress', () => {
    const done = aRollout({phase: 'Promoted'})
    expect(decide(done, {nowMs: 1, intent: {kind: 'step', force: false}}, plan).refusal?.kind).toBe('notInProgress')
  })
})
