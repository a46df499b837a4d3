import {describe, expect, it} from 'vitest'

import {judgePolicyOf} from '../../../src/rollout/core/analysis.js'
import {NO_EVIDENCE, addBlock, countsOf, judgeBlocks, judgeEvidence, observeWindow, rollbackDue, rollbackNeeded, slowBound, type Evidence} from '../../../src/rollout/core/evidence.js'
import {NO_BETS, absoluteAllowance, betOnBlock, eventShare, expectedExcessShare, mulberry32, logPassEvidence, logRollbackEvidence, ratioOfShare, toleratedRate, type Tolerance} from '../../../src/rollout/core/sequential.js'
import {newRollout} from '../../../src/rollout/core/decide.js'
import {rolloutStateSchema} from '../../../src/rollout/state-schema.js'
import {aPolicy, blocksOf, version, windowOf} from '../builders.js'

const prng = mulberry32

const policy = judgePolicyOf(aPolicy())
const tolerance: Tolerance = {ratio: 1.5, points: 0.1, perMinute: 5}

/** Poisson(mean) by inversion, for the simulations (normal approximation above 500). */
function poisson(mean: number, uniform: () => number): number {
  if (!(mean > 0)) return 0
  if (mean > 500) return Math.max(0, Math.round(mean + Math.sqrt(mean) * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())))
  let k = 0
  let p = Math.exp(-mean)
  let cumulative = p
  const u = uniform()
  while (u > cumulative && k < 10_000) {
    k++
    p *= mean / k
    cumulative += p
  }
  return k
}

describe('event shares', () => {
  it.each([
    [1, 0.2, 0.2],
    [1.5, 0.2, 0.3 / 1.1],
    [2, 0.5, 2 / 3],
    [10, 0.2, 2 / 2.8],
  ])('ratio %f at canary share %f gives the canary %f of the events', (ratio, share, expected) => {
    expect(eventShare(ratio, share)).toBeCloseTo(expected, 12)
    expect(ratioOfShare(expected, share)).toBeCloseTo(ratio, 9)
  })

  it('tolerates the largest of ratio × stable, stable + points and stable + perMinute at full traffic', () => {
    // 6,000 requests/min (100/s): 5/min is 0.083 points, below 0.1 points.
    expect(toleratedRate(tolerance, 0.005, 6000)).toBeCloseTo(0.0075, 12)
    expect(toleratedRate(tolerance, 0.0001, 6000)).toBeCloseTo(0.0011, 12)
    // 120 requests/min (2/s): 5 extra errors a minute are 4.17 points.
    expect(toleratedRate(tolerance, 0.005, 120)).toBeCloseTo(0.005 + 5 / 120, 12)
    // Unknown traffic, or no perMinute: the points allowance alone.
    expect(toleratedRate(tolerance, 0.0001)).toBeCloseTo(0.0011, 12)
    expect(toleratedRate({ratio: 1.5, points: 0.1}, 0.0001, 120)).toBeCloseTo(0.0011, 12)
  })

  it.each([
    [6000, 0.001],
    [600, 5 / 600],
    [60, 5 / 60],
    [300_000, 0.001],
  ])('turns perMinute into an allowance per request that shrinks as traffic grows (%f requests/min → %f)', (requestsPerMinute, expected) => {
    expect(absoluteAllowance(tolerance, requestsPerMinute)).toBeCloseTo(expected, 12)
  })
})

describe('virtual events, averaged out (Rao–Blackwell)', () => {
  it.each([
    [0, 0, 0.3, 0.2],
    [1, 0, 0.3, 0.2],
    [2, 3, 1.7, 0.5],
    [5, 1, 40, 0.2],
    [0, 4, 2, 0.3],
  ])('pays the mean over Poisson virtual events of the canary share minus w (canary %f, stable %f, virtual mean %f, w %f)', (canary, stable, mean, w) => {
    const u = prng(canary * 100 + stable * 10 + mean)
    let sum = 0
    const draws = 200_000
    for (let i = 0; i < draws; i++) {
      const v = poisson(mean, u)
      const events = canary + stable + v
      sum += events === 0 ? 0 : canary / events - w
    }
    expect(expectedExcessShare(canary, stable, mean, w)).toBeCloseTo(sum / draws, 2)
  })

  it('has nothing to bet on when no event is possible', () => {
    expect(expectedExcessShare(0, 0, 0, 0.2)).toBeNull()
    expect(expectedExcessShare(1, 1, 0, 0.2)).toBeCloseTo(0.3, 12)
  })
})

/** A second of traffic: Poisson requests and errors, plus clumps of 2–20 errors tied to one version. */
function second(u: () => number, canaryShare: number, rps: number, canaryRate: number, stableRate: number, clumpRate: number) {
  const canaryRequests = poisson(rps * canaryShare, u)
  const stableRequests = poisson(rps * (1 - canaryShare), u)
  const errors = (requests: number, rate: number) => {
    let e = poisson(requests * rate, u)
    const clumps = poisson(requests * clumpRate, u)
    for (let i = 0; i < clumps; i++) e += 2 + Math.floor(u() * 19)
    return Math.min(e, requests + e)
  }
  const canaryErrors = errors(canaryRequests, canaryRate)
  const stableErrors = errors(stableRequests, stableRate)
  return {canary: {requests: Math.max(canaryRequests, canaryErrors), errors: canaryErrors}, stable: {requests: Math.max(stableRequests, stableErrors), errors: stableErrors}}
}

/** Share of `runs` simulated canaries (each `seconds` long) whose evidence ever crossed the rollback (or pass) threshold. */
function crossings(runs: number, seconds: number, world: {canaryShare: number; rps: number; canaryRate: number; stableRate: number; clumpRate?: number}, seed: number) {
  const u = prng(seed)
  let rolledBack = 0
  let passed = 0
  const rollbackAt = Math.log(rollbackNeeded(policy, 'errorRate'))
  const passAt = Math.log(1 / policy.maxFalsePassRate)
  for (let run = 0; run < runs; run++) {
    let bets = NO_BETS
    let history = {events: 0, requests: 0, trafficRequests: 0, trafficMs: 0}
    let everRolledBack = false
    let everPassed = false
    for (let t = 0; t < seconds; t++) {
      const s = second(u, world.canaryShare, world.rps, world.canaryRate, world.stableRate, world.clumpRate ?? 0)
      bets = betOnBlock(bets, {canaryEvents: s.canary.errors, stableEvents: s.stable.errors, canaryRequests: s.canary.requests, stableRequests: s.stable.requests, durationMs: 1000}, tolerance, history)
      history = {events: history.events + s.stable.errors, requests: history.requests + s.stable.requests, trafficRequests: history.trafficRequests + s.canary.requests + s.stable.requests, trafficMs: history.trafficMs + 1000}
      everRolledBack ||= logRollbackEvidence(bets) >= rollbackAt
      everPassed ||= logPassEvidence(bets) >= passAt
    }
    if (everRolledBack) rolledBack++
    if (everPassed) passed++
  }
  return {rolledBack: rolledBack / runs, passed: passed / runs}
}

describe('validity under continuous monitoring (seeded simulations)', () => {
  it('rolls back at most about its share of maxFalsePositiveRate of canaries as good as stable, looked at every second for 20 minutes, clumps included', () => {
    const {rolledBack} = crossings(300, 1200, {canaryShare: 0.2, rps: 100, canaryRate: 0.005, stableRate: 0.005, clumpRate: 0.0002}, 11)
    // Ville's bound for errors is 0.75 %; 300 runs: allow sampling noise up to 2 %.
    expect(rolledBack).toBeLessThanOrEqual(0.02)
  })

  it('rolls back at most about its share of maxFalsePositiveRate of canaries exactly at the per-minute allowance at 2 requests/s', () => {
    // 120 requests/min: the canary errs 5/120 more per request than stable, the edge of the tolerance.
    const {rolledBack} = crossings(300, 1200, {canaryShare: 0.2, rps: 2, canaryRate: 0.005 + 5 / 120, stableRate: 0.005}, 15)
    expect(rolledBack).toBeLessThanOrEqual(0.02)
  })

  it('passes at most about maxFalsePassRate of canaries just beyond the per-minute allowance at 2 requests/s', () => {
    const {passed} = crossings(300, 1200, {canaryShare: 0.2, rps: 2, canaryRate: 0.005 + 5 / 120, stableRate: 0.005}, 16)
    expect(passed).toBeLessThanOrEqual(0.08)
  })

  it('passes a canary like stable at 2 requests/s within 15 minutes nearly always (the per-minute allowance)', () => {
    const {passed} = crossings(200, 900, {canaryShare: 0.2, rps: 2, canaryRate: 0.005, stableRate: 0.005}, 17)
    expect(passed).toBeGreaterThan(0.95)
  })

  it('does not roll back a canary 1.1× stable, inside the 1.5× tolerance, at high traffic', () => {
    const {rolledBack, passed} = crossings(100, 600, {canaryShare: 0.2, rps: 2000, canaryRate: 0.0055, stableRate: 0.005}, 12)
    expect(rolledBack).toBe(0)
    expect(passed).toBeGreaterThan(0.9)
  })

  it('passes at most about maxFalsePassRate of canaries exactly at the tolerance (1.5× stable)', () => {
    const {passed} = crossings(300, 900, {canaryShare: 0.2, rps: 200, canaryRate: 0.0075, stableRate: 0.005}, 13)
    expect(passed).toBeLessThanOrEqual(0.08)
  })

  it('rolls back a canary erring 3× stable and never passes it', () => {
    const {rolledBack, passed} = crossings(100, 900, {canaryShare: 0.2, rps: 100, canaryRate: 0.015, stableRate: 0.005}, 14)
    expect(rolledBack).toBeGreaterThan(0.95)
    expect(passed).toBe(0)
  })
})

describe('monotonicity', () => {
  it('more canary errors never mean less rollback evidence or more pass evidence', () => {
    const run = (canaryErrors: number) => judgeBlocks(blocksOf(200, {requests: 20, errors: canaryErrors}, {requests: 80, errors: 1}), policy).judgment.errorRate
    const judged = [0, 1, 2, 4, 8].map(run)
    for (let i = 1; i < judged.length; i++) {
      expect(judged[i]!.rollbackEvidence).toBeGreaterThanOrEqual(judged[i - 1]!.rollbackEvidence)
      expect(judged[i]!.passEvidence).toBeLessThanOrEqual(judged[i - 1]!.passEvidence)
    }
  })
})

describe('the evidence over readings', () => {
  it('turns cumulative readings into one-second blocks and starts from zero when the window changes', () => {
    let e: Evidence = NO_EVIDENCE
    e = observeWindow(e, windowOf(version(20, 1), version(80, 0), 0, 1000), 1000, policy)
    e = observeWindow(e, windowOf(version(40, 1), version(160, 2), 0, 2000), 2000, policy)
    expect(e.canary).toMatchObject({requests: 40, errors: 1})
    expect(e.stable).toMatchObject({requests: 160, errors: 2})
    // The weight changed at 2000: the new window's first reading is all new.
    e = observeWindow(e, windowOf(version(50, 0), version(50, 1), 2000, 3000), 3000, policy)
    expect(e.canary).toMatchObject({requests: 90, errors: 1})
    expect(e.sinceLook.stable).toMatchObject({requests: 210, errors: 3})
  })

  it('reads a counter that went down (a restarted proxy, a Prometheus extrapolation) as nothing new, never as negative', () => {
    let e: Evidence = NO_EVIDENCE
    e = observeWindow(e, windowOf(version(100, 5), version(400, 2), 0, 1000), 1000, policy)
    e = observeWindow(e, windowOf(version(60, 1), version(300, 1), 0, 2000), 2000, policy)
    expect(e.canary).toMatchObject({requests: 100, errors: 5})
  })

  it('waits until a block spans a second before betting on it', () => {
    const e = observeWindow(observeWindow(NO_EVIDENCE, windowOf(version(5, 1), version(20), 0, 250), 250, policy), windowOf(version(10, 1), version(40), 0, 500), 500, policy)
    expect(e.errors.blocks).toBe(0)
    expect(e.pending?.canary.requests).toBe(10)
  })

  it('rolls back a canary failing 30 % of requests at 2 requests/s within 3 minutes', () => {
    const u = prng(21)
    let e: Evidence = NO_EVIDENCE
    let seconds = 0
    while (!rollbackDue(e, policy) && seconds < 600) {
      seconds++
      const s = second(u, 0.2, 2, 0.3, 0.005, 0)
      e = addBlock(e, countsOf(version(s.canary.requests, s.canary.errors)), countsOf(version(s.stable.requests, s.stable.errors)), policy, seconds * 1000)
    }
    expect(seconds).toBeLessThanOrEqual(180)
  })

  it('passes a canary and a stable without any error once the canary served enough requests (the points allowance)', () => {
    const {judgment} = judgeBlocks(blocksOf(600, {requests: 20, errors: 0}, {requests: 80, errors: 0}), policy)
    expect(judgment.errorRate.verdict).toBe('Successful')
    expect(judgeBlocks(blocksOf(10, {requests: 20, errors: 0}, {requests: 80, errors: 0}), policy).judgment.errorRate.verdict).toBe('Inconclusive')
  })

  it('uses the largest bucket bound that at least 1 % of stable exceeded as "slow"', () => {
    const stable = countsOf({requests: 1000, errors: 0, latency: [{leSeconds: 0.05, count: 900}, {leSeconds: 0.1, count: 980}, {leSeconds: 0.25, count: 998}, {leSeconds: Infinity, count: 1000}]})
    expect(slowBound(stable)).toBe(0.1)
    expect(slowBound({...stable, requests: 100})).toBeNull()
  })

  it('rolls back a canary slower than stable on latency alone', () => {
    const slowCanary = (i: number) => windowOf({requests: 20, errors: 0, latency: [{leSeconds: 0.1, count: 14}, {leSeconds: 0.5, count: 20}, {leSeconds: Infinity, count: 20}]}, {requests: 80, errors: 0, latency: [{leSeconds: 0.1, count: 78}, {leSeconds: 0.5, count: 80}, {leSeconds: Infinity, count: 80}]}, i * 1000, (i + 1) * 1000)
    const judged = judgeEvidence(judgeBlocks(Array.from({length: 120}, (_, i) => slowCanary(i)), policy).evidence, policy)
    expect(judged.latency).toMatchObject({verdict: 'Failed', boundMs: 100, measured: true})
    expect(judged.verdict).toBe('Failed')
  })
})

describe('persisted evidence', () => {
  it('loads a rollout saved before the per-minute allowance and the new stakes, and keeps judging it', () => {
    const fresh = judgeBlocks(blocksOf(60, {requests: 20, errors: 0}, {requests: 80, errors: 1}), policy).evidence
    // What the previous version saved: no spanMs, and bets without the mixed pass wealth, the block counts or the Newton stakes.
    const strip = (b: typeof fresh.errors) => ({logWealthRollback: b.logWealthRollback, logWealthPass: b.logWealthPass, logWealthRollbackAbsolute: b.logWealthRollbackAbsolute, logWealthPassAbsolute: b.logWealthPassAbsolute, recentSum: b.recentSum, recentSquares: b.recentSquares, absoluteSum: b.absoluteSum, absoluteSquares: b.absoluteSquares, blocks: b.blocks, canaryEvents: b.canaryEvents, stableEvents: b.stableEvents, expectedCanaryEvents: b.expectedCanaryEvents})
    const {spanMs: _span, ...oldEvidence} = {...fresh, errors: strip(fresh.errors), latency: strip(fresh.latency)}
    const state = {...newRollout({name: 'shop', stableImage: 'app:v1', canaryImage: 'app:v2', nowMs: 0}), evidence: oldEvidence}
    const parsed = rolloutStateSchema.safeParse(JSON.parse(JSON.stringify(state)))
    expect(parsed.success, JSON.stringify(parsed.error)).toBe(true)
    const old = parsed.data!.evidence!
    expect(logPassEvidence(old.errors)).toBeCloseTo(Math.log((Math.exp(fresh.errors.logWealthPass) + Math.exp(fresh.errors.logWealthPassAbsolute)) / 2), 9)
    const next = addBlock(old, countsOf(version(20, 0)), countsOf(version(80, 0)), policy, 61_000)
    expect(next.errors.blocks).toBeGreaterThanOrEqual(old.errors.blocks)
    expect(judgeEvidence(next, policy).errorRate.verdict).toMatch(/Successful|Inconclusive/)
  })
})
