import {describe, expect, it} from 'vitest'

import {decide, newRollout} from '../../../src/rollout/core/decide.js'
import {judgePolicyOf} from '../../../src/rollout/core/analysis.js'
import {judgeBlocks} from '../../../src/rollout/core/evidence.js'
import {currentWeight, desiredWeight} from '../../../src/rollout/core/plan.js'
import type {Observation, RolloutState} from '../../../src/rollout/core/types.js'
import {weights} from '../../../src/rollout/core/weights.js'
import {INTERVAL_MS, aPlan, aRollout, blocksOf, failing, healthy, observe, pause, provenHealthy, setWeight, version, windowOf} from '../builders.js'

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

/**
 * Feeds `seconds` one-second readings of the window since `state.windowStartMs` (cumulative, as
 * the metric sources report it) with per-second counts from `perSecond`, applying decisions like
 * the engine does; stops early when the phase is terminal.
 */
function run(state: RolloutState, fromMs: number, seconds: number, perSecond: (second: number, weight: number) => {canary: [number, number]; stable: [number, number]}, p = plan) {
  let current = state
  let weight = observeWeight(current, p)
  const totals = {windowStartMs: current.windowStartMs, canary: [0, 0], stable: [0, 0]}
  for (let i = 1; i <= seconds; i++) {
    const now = fromMs + i * 1000
    if (totals.windowStartMs !== current.windowStartMs) Object.assign(totals, {windowStartMs: current.windowStartMs, canary: [0, 0], stable: [0, 0]})
    const counts = perSecond(i, weight)
    totals.canary = [totals.canary[0]! + counts.canary[0], totals.canary[1]! + counts.canary[1]]
    totals.stable = [totals.stable[0]! + counts.stable[0], totals.stable[1]! + counts.stable[1]]
    const metrics = windowOf(version(totals.canary[0]!, totals.canary[1]), version(totals.stable[0]!, totals.stable[1]), totals.windowStartMs, now)
    let decision = decide(current, observe(now, weight, metrics), p)
    for (;;) {
      for (const action of decision.actions) if (action.type === 'setWeights') weight = action.weights.canary
      current = decision.next
      if (!decision.immediate) break
      decision = decide(current, observe(now, weight), p)
    }
    if (['Promoted', 'RolledBack', 'Aborted', 'Inconclusive', 'Failed'].includes(current.phase)) return {state: current, atMs: now}
  }
  return {state: current, atMs: fromMs + seconds * 1000}
}

function observeWeight(state: RolloutState, p = plan): number {
  return state.phase === 'Progressing' || state.phase === 'Paused' ? (state.weightOverride ?? currentWeight(p, state.stepIndex)) : 0
}

/** 100 requests/s split by weight; stable errs on one request in 200, the canary on one in `canaryOneIn`. */
const traffic = (canaryOneIn: number) => (second: number, weight: number) => {
  const canaryRequests = weight
  const stableRequests = 100 - weight
  return {canary: [canaryRequests, second % canaryOneIn === 0 ? Math.min(canaryRequests, Math.ceil(canaryRequests / 20)) : 0] as [number, number], stable: [stableRequests, second % 2 === 0 ? 1 : 0] as [number, number]}
}

describe('following the plan', () => {
  const at20 = aRollout({stepIndex: 0, windowStartMs: 0})
  const proven = aRollout({stepIndex: 0, windowStartMs: 0, evidence: provenHealthy()})

  it.each([
    ['waits for the first interval before judging', observe(INTERVAL_MS - 1, 20, healthy()), 0, []],
    ['does not pass a step on absence of evidence (one clean window)', observe(INTERVAL_MS, 20, healthy()), 0, []],
    ['holds when there is not enough data yet', observe(INTERVAL_MS, 20, windowOf(version(10), version(40))), 0, []],
    ['holds when metrics cannot be read', observe(INTERVAL_MS, 20, undefined, {metrics: {error: 'connection refused'}}), 0, []],
  ])('%s', (_name, observation, stepIndex, actions) => {
    const decision = decide(at20, observation, plan)
    expect(decision.next.phase).toBe('Progressing')
    expect(decision.next.stepIndex).toBe(stepIndex)
    expect(decision.actions).toEqual(actions)
  })

  it('advances after a look once the evidence bounds the canary within the tolerance', () => {
    const decision = decide(proven, observe(INTERVAL_MS, 20, healthy()), plan)
    expect(decision.next.lastAnalysis?.verdict).toBe('Successful')
    expect(decision.next.stepIndex).toBe(1)
    expect(decision.actions).toEqual([{type: 'setWeights', weights: weights(50)}])
  })

  it('passes a healthy canary on evidence gathered second by second, carried across weights, and promotes it', () => {
    const {state} = run(at20, 0, 3600, traffic(1000))
    expect(state.phase).toBe('Promoted')
    const looks = state.decisions.filter((d) => d.event === 'analysis')
    // Evidence accumulates over the looks: not Successful at the first look, Successful later.
    expect(looks[0]?.analysis?.verdict).toBe('Inconclusive')
    const errors = looks.at(-1)?.analysis?.measurements.find((m) => m.check === 'errorRateVsStable')
    expect(errors?.evidence?.pass).toBeGreaterThanOrEqual(errors?.evidence?.passNeeded ?? Number.POSITIVE_INFINITY)
    expect(errors?.ratio).toBeLessThan(1)
    expect(errors?.toleratedRatio).toBeCloseTo(1.5)
  })

  it('rolls a canary failing 30 % of requests at 2 requests/s back within three minutes', () => {
    const lowTraffic = (second: number, weight: number) => {
      const toCanary = second % Math.round(100 / weight) === 0
      return {canary: [toCanary ? 1 : 0, toCanary && second % 10 < 3 ? 1 : 0] as [number, number], stable: [toCanary ? 1 : 2, 0] as [number, number]}
    }
    const {state, atMs} = run(at20, 0, 600, lowTraffic)
    expect(state.phase).toBe('RolledBack')
    expect(atMs).toBeLessThanOrEqual(180_000)
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

  it('rolls back a canary that turns bad after 20 healthy minutes within a minute, at any tick', () => {
    // No guard: the comparison with stable alone must catch it.
    const paused = aPlan([setWeight(20), pause(3_600_000), setWeight(100)], {successRatePercent: undefined})
    const healthyFirst = (second: number, weight: number) => (second <= 1200 ? traffic(1000)(second, weight) : traffic(1)(second, weight))
    const {state, atMs} = run(aRollout({stepIndex: 0, windowStartMs: 0}), 0, 3000, healthyFirst, paused)
    expect(state.phase).toBe('RolledBack')
    expect(atMs).toBeGreaterThan(1_200_000)
    expect(atMs - 1_200_000).toBeLessThanOrEqual(60_000)
    expect(state.endMessage).toMatch(/errors worse than stable beyond the tolerance: .*ratio/)
  })

  it('does not roll back a canary as good as stable when both degrade together (common mode)', () => {
    const shared = (second: number, weight: number) => {
      const bad = second > 60 && second < 360
      return {canary: [weight, bad ? Math.ceil(weight / 10) : second % 10 === 0 ? 1 : 0] as [number, number], stable: [100 - weight, bad ? Math.ceil((100 - weight) / 10) : second % 2 === 0 ? 1 : 0] as [number, number]}
    }
    const {state} = run(at20, 0, 400, shared, aPlan(undefined, {successRatePercent: undefined}))
    expect(['Progressing', 'Promoted']).toContain(state.phase)
    // While stable is degraded the weight holds, and the looks say why.
    const held = state.decisions.filter((d) => d.atMs > 90_000 && d.atMs < 360_000)
    expect(held.some((d) => d.event === 'analysis' && /stable degraded, holding the weight/.test(d.message))).toBe(true)
    expect(held.some((d) => d.event === 'stepAdvanced' || d.event === 'promoting')).toBe(false)
  })

  it('rolls back when the canary alone breaks a guard failureLimit looks in a row', () => {
    const lenient = aPlan(undefined, {failureLimit: 2})
    // 3 % canary errors since the last look against a 99 % guard; stable is clean.
    const bad = windowOf(version(1000, 30), version(4000, 4))
    const first = decide(at20, observe(INTERVAL_MS, 20, bad), lenient)
    expect(first.next.phase).toBe('Progressing')
    expect(first.next.consecutiveBreaches).toBe(1)
    const second = decide(first.next, observe(2 * INTERVAL_MS, 20, windowOf(version(2000, 60), version(8000, 8))), lenient)
    expect(second.next.phase).toBe('RollingBack')
    expect(second.next.endMessage).toMatch(/2 time\(s\) in a row: success rate since the last look at most/)
  })

  it('holds the weight when stable breaks the same guard (common mode), and says so with the numbers', () => {
    const strict = aPlan(undefined, {failureLimit: 1})
    // Both at 3 % errors: below the 99 % guard, but no worse than stable.
    const both = windowOf(version(1000, 30), version(4000, 120))
    const decision = decide(at20, observe(INTERVAL_MS, 20, both), strict)
    expect(decision.next.phase).toBe('Progressing')
    expect(decision.next.consecutiveBreaches).toBe(0)
    const guard = decision.next.lastAnalysis?.measurements.find((m) => m.check === 'successRate')
    expect(guard).toMatchObject({verdict: 'Inconclusive', stableBreaks: true})
    expect(guard?.note).toMatch(/stable breaks it too \(stable 97.00 %\): holding the weight/)
    const gated = decide(decision.next, observe(INTERVAL_MS + 1000, 20, windowOf(version(2000, 60), version(8000, 240)), {intent: {kind: 'step', force: false}}), strict)
    expect(gated.refusal?.message).toMatch(/successRate: .*stable breaks it too/)
  })

  it('ends Inconclusive (and rolls back) when the evidence does not pass by the deadline', () => {
    const {next} = settle(at20, observe(30 * 60_000, 20, windowOf(version(3), version(12))))
    expect(next.phase).toBe('Inconclusive')
    expect(next.endMessage).toMatch(/inconclusive after 1800 s at weight 20/)
  })

  it('ends Inconclusive after deadlineRequests canary requests at one weight', () => {
    const byRequests = aPlan(undefined, {deadlineRequests: 5000})
    expect(settle(at20, observe(INTERVAL_MS, 20, windowOf(version(4999), version(20_000))), ).next.phase).toBe('Progressing')
    const {next} = settle(at20, {...observe(INTERVAL_MS, 20, windowOf(version(5000), version(20_000)))})
    expect(next.phase).toBe('Progressing')
    const decided = decide(at20, observe(INTERVAL_MS, 20, windowOf(version(5000), version(20_000))), byRequests)
    expect(decided.next.phase).toBe('RollingBack')
    expect(decided.next.endMessage).toMatch(/after 5000 canary requests \(deadline 5000\)/)
  })

  it('holds at the deadline with onInconclusive: hold, logs it once, and keeps judging', () => {
    const holding = aPlan(undefined, {onInconclusive: 'hold'})
    const first = decide(at20, observe(30 * 60_000, 20, windowOf(version(3), version(12))), holding)
    expect(first.next.phase).toBe('Progressing')
    expect(first.next.decisions.at(-1)?.event).toBe('holding')
    expect(first.next.decisions.at(-1)?.message).toMatch(/holding the weight and judging on/)
    const later = decide(first.next, observe(31 * 60_000, 20, windowOf(version(4), version(16))), holding)
    expect(later.next.decisions.filter((d) => d.event === 'holding')).toHaveLength(1)
    expect(later.next.phase).toBe('Progressing')
  })

  it('enters an indefinite pause as Paused and stays there', () => {
    const paused = aPlan([setWeight(20), pause(), setWeight(100)])
    const first = decide(proven, observe(INTERVAL_MS, 20, healthy()), paused)
    expect(first.next.phase).toBe('Paused')
    const later = decide(first.next, observe(5 * INTERVAL_MS, 20, healthy()), paused)
    expect(later.next.phase).toBe('Paused')
    expect(later.next.stepIndex).toBe(1)
  })

  it('holds a timed pause for its duration', () => {
    const timed = aPlan([setWeight(20), pause(30_000), setWeight(100)])
    const inPause = aRollout({stepIndex: 1, stepStartedAtMs: 0, windowStartMs: 0, evidence: provenHealthy()})
    expect(decide(inPause, observe(20_000, 20, healthy()), timed).next.stepIndex).toBe(1)
    expect(decide(inPause, observe(30_000, 20, healthy()), timed).next.stepIndex).toBe(2)
  })

  it('promotes after the last step: all traffic to the canary, then it becomes stable', () => {
    const atLast = aRollout({stepIndex: 2, windowStartMs: 0, evidence: provenHealthy()})
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
  const at20 = aRollout({stepIndex: 0, windowStartMs: 0, evidence: provenHealthy()})
  const failingCanary = aRollout({stepIndex: 0, windowStartMs: 0, evidence: judgeBlocks(blocksOf(120, {requests: 20, errors: 2}, {requests: 80, errors: 1}), judgePolicyOf(plan.analysis)).evidence})

  it.each([
    ['step on a healthy canary advances', {kind: 'step', force: false}, healthy(), undefined, 1],
    ['step on a canary without evidence yet is refused', {kind: 'step', force: false}, healthy(), 'notEnoughData', 0],
    ['step without enough data is refused', {kind: 'step', force: false}, windowOf(version(5), version(20)), 'notEnoughData', 0],
    ['step --force on a failing canary advances', {kind: 'step', force: true}, failing(), undefined, 1],
    ['step --weight lower needs no gate', {kind: 'step', weight: 10, force: false}, failing(), undefined, 0],
    ['step --weight higher is gated', {kind: 'step', weight: 40, force: false}, windowOf(version(5), version(20)), 'notEnoughData', 0],
    ['step --weight beyond the total is refused', {kind: 'step', weight: 101, force: true}, healthy(), 'invalidWeight', 0],
  ] as const)('%s', (name, intent, metrics, refusal, stepIndex) => {
    const state = name.includes('without evidence') ? aRollout({stepIndex: 0, windowStartMs: 0}) : at20
    const decision = decide(state, observe(1000, 20, metrics, {intent}), plan)
    expect(decision.refusal?.kind).toBe(refusal)
    expect(decision.next.stepIndex).toBe(stepIndex)
    expect(decision.next.phase).toBe('Progressing')
  })

  it('step on a canary the evidence says is worse than stable is refused with the numbers', () => {
    const decision = decide(failingCanary, observe(1000, 20, failing(), {intent: {kind: 'step', force: false}}), plan)
    expect(decision.refusal?.kind).toBe('analysisFailing')
    expect(decision.refusal?.message).toMatch(/ratio .*worse than the tolerance: evidence/)
    expect(decision.next.stepIndex).toBe(0)
  })

  it('step --weight sets that weight now and restarts the analysis window', () => {
    const decision = decide(at20, observe(1000, 20, healthy(), {intent: {kind: 'step', weight: 35, force: false}}), plan)
    expect(decision.actions).toEqual([{type: 'setWeights', weights: weights(35)}])
    expect(decision.next.weightOverride).toBe(35)
    expect(decision.next.windowStartMs).toBe(1000)
  })

  it.each([
    ['the plan\'s weight', {}, 20, false],
    ['the plan\'s weight, forced', {}, 20, true],
    ['an earlier --weight', {weightOverride: 35}, 35, false],
  ] as const)('step --weight to the weight in force (%s) changes nothing: no action, no look, no log entry, same window', (_, overrides, weight, force) => {
    const state = {...at20, ...overrides}
    const decision = decide(state, observe(1000, weight, healthy(), {intent: {kind: 'step', weight, force}}), plan)
    expect(decision).toEqual({next: state, actions: [], immediate: false})
  })

  it('step at an indefinite pause moves on to the next step', () => {
    const paused = aPlan([setWeight(20), pause(), setWeight(100)])
    const state = aRollout({phase: 'Paused', stepIndex: 1, evidence: provenHealthy()})
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
