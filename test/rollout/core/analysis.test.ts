import {describe, expect, it} from 'vitest'

import {evaluate, judge, p99Ms, worseThanStablePValue} from '../../../src/rollout/core/analysis.js'
import type {AnalysisPolicy} from '../../../src/rollout/core/types.js'
import {aPolicy, version, windowOf} from '../builders.js'

function verdictOf(canary: ReturnType<typeof version>, stable: ReturnType<typeof version>, policy: Partial<AnalysisPolicy> = {}) {
  return judge({metrics: windowOf(canary, stable), canaryReady: true, policy: aPolicy(policy), look: 1, atMs: 10_000, windowStartMs: 0, canaryWeight: 20})
}

describe('judging one look', () => {
  it.each([
    ['a canary with fewer than minRequests requests is inconclusive, even when every request failed', version(49, 49), version(1000, 5), 'Inconclusive'],
    ['a canary as good as stable passes', version(200, 1), version(800, 4), 'Successful'],
    ['a canary erring 5 % against stable at 0.5 % fails', version(200, 10), version(800, 4), 'Failed'],
    ['a canary clearly below the success threshold fails even without stable traffic', version(500, 40), version(0, 0), 'Failed'],
    ['a canary at 100 % weight (no stable traffic) is judged on its thresholds alone', version(500, 1), version(0, 0), 'Successful'],
  ])('%s', (_name, canary, stable, expected) => {
    expect(verdictOf(canary, stable).verdict).toBe(expected)
  })

  it('says there were no canary requests instead of quoting a bound computed from none', () => {
    const result = verdictOf(version(0, 0), version(1000, 5), {latencyP99Ms: 500})
    expect(result.verdict).toBe('Inconclusive')
    for (const check of ['successRate', 'latencyP99'] as const) expect(result.measurements.find((m) => m.check === check)?.note).toBe('no canary requests in the window')
  })

  it('marks no measurement Failed below minRequests, but still reports the numbers', () => {
    const result = verdictOf(version(40, 20), version(1000, 5))
    expect(result.verdict).toBe('Inconclusive')
    expect(result.measurements.filter((m) => m.verdict === 'Failed')).toEqual([])
    expect(result.measurements.find((m) => m.check === 'successRate')?.value).toBe(50)
  })

  it('does not fail a canary sitting exactly at the success threshold (the naive check would, half the time)', () => {
    // 99.5 % threshold, canary at 0.5 % errors with a little more than expected by chance: the
    // naive per-interval check says 99.4 % < 99.5 %, the confidence bound says "could be 99.7 %".
    const result = verdictOf(version(1000, 6), version(4000, 20), {successRatePercent: 99.5})
    const measured = result.measurements.find((m) => m.check === 'successRate')!
    expect(measured.value).toBeLessThan(99.5)
    expect(measured.bound).toBeGreaterThan(99.5)
    expect(result.verdict).toBe('Successful')
  })

  it('fails a p99 limit only when significantly more than 1 % of requests are slower', () => {
    const policy = {latencyP99Ms: 500, successRatePercent: undefined}
    expect(verdictOf(version(1000, 0, 12), version(1000), policy).verdict).toBe('Successful')
    const slow = verdictOf(version(1000, 0, 60), version(1000), policy)
    expect(slow.verdict).toBe('Failed')
    expect(slow.measurements.find((m) => m.check === 'latencyP99')?.note).toMatch(/slower than 500 ms/)
  })

  it('is Failed when the canary has no ready replica, whatever the numbers', () => {
    const result = judge({metrics: windowOf(version(200, 0), version(800, 0)), canaryReady: false, policy: aPolicy(), look: 1, atMs: 1, windowStartMs: 0, canaryWeight: 20})
    expect(result.verdict).toBe('Failed')
  })

  it('spends less alpha at later looks', () => {
    const first = verdictOf(version(200, 1), version(800, 4)).measurements.find((m) => m.check === 'errorRateVsStable')!
    const tenth = judge({metrics: windowOf(version(200, 1), version(800, 4)), canaryReady: true, policy: aPolicy(), look: 10, atMs: 1, windowStartMs: 0, canaryWeight: 20}).measurements.find((m) => m.check === 'errorRateVsStable')!
    expect(tenth.alpha).toBeCloseTo(first.alpha! / 100, 12)
  })
})

describe('the comparison with stable', () => {
  it('has no p-value without stable traffic', () => {
    expect(worseThanStablePValue(version(100, 1), version(0))).toBeNull()
  })

  it('is 1 when nobody erred and small when the canary holds most errors with a small share of requests', () => {
    expect(worseThanStablePValue(version(100), version(400))).toBe(1)
    expect(worseThanStablePValue(version(200, 10), version(800, 4))).toBeLessThan(0.001)
  })
})

describe('evaluate, the one threshold comparison', () => {
  it('needs minRequests canary requests', () => {
    const m = evaluate({kind: 'requests', minRequests: 100}, {metrics: windowOf(version(99), version(500)), canaryReady: true, alpha: 0.01})
    expect(m).toMatchObject({verdict: 'Inconclusive', value: 99, threshold: 100})
  })
})

describe('p99 from histogram buckets', () => {
  it('interpolates inside the bucket that holds the 99th percentile', () => {
    // 1000 requests: 980 ≤ 100 ms, 20 between 0.5 s and 1 s; rank 990 lies 10/20 into the last bucket.
    expect(p99Ms({requests: 1000, errors: 0, latency: [{leSeconds: 0.1, count: 980}, {leSeconds: 0.5, count: 980}, {leSeconds: 1, count: 1000}, {leSeconds: Infinity, count: 1000}]})).toBeCloseTo(750, 6)
  })

  it('is null without requests', () => {
    expect(p99Ms(version(0))).toBeNull()
  })
})

describe('the recent window', () => {
  // A canary that served 20 healthy minutes (12,000 requests at 0.5 %) and then 30 s at 5 %: over
  // the whole step its error rate is still ~0.6 %, over the last 30 s it is 5 %.
  const history = windowOf(version(12_600, 60 + 30), version(50_400, 252), 0, 1_230_000)
  const lastThirty = windowOf(version(600, 30), version(2400, 12), 1_200_000, 1_230_000)
  const look = (recentMetrics?: typeof lastThirty, policy: Partial<AnalysisPolicy> = {}) =>
    judge({metrics: history, ...(recentMetrics === undefined ? {} : {recentMetrics}), canaryReady: true, policy: aPolicy(policy), look: 123, atMs: 1_230_000, windowStartMs: 0, canaryWeight: 20})

  it('catches a canary that turned bad late, which the whole-step window dilutes', () => {
    expect(look().verdict).toBe('Successful')
    const result = look(lastThirty)
    expect(result.verdict).toBe('Failed')
    const recent = result.measurements.filter((m) => m.window !== undefined)
    expect(recent.map((m) => m.check).sort()).toEqual(['errorRateVsStable', 'successRate'])
    expect(recent.every((m) => m.window?.sinceMs === 1_200_000 && m.note.startsWith('last 30 s: '))).toBe(true)
    expect(recent.find((m) => m.check === 'errorRateVsStable')?.verdict).toBe('Failed')
    expect(result.measurements.filter((m) => m.window === undefined && m.check === 'errorRateVsStable')[0]?.verdict).toBe('Successful')
  })

  it('costs no extra false-positive budget: the look\'s alpha is split over twice the checks', () => {
    const alone = look().measurements.find((m) => m.check === 'errorRateVsStable')!.alpha!
    const withRecent = look(lastThirty).measurements.filter((m) => m.alpha !== undefined)
    expect(withRecent).toHaveLength(4)
    for (const m of withRecent) expect(m.alpha).toBeCloseTo(alone / 2, 15)
  })

  it('is not judged with fewer than minRequests canary requests in it', () => {
    const thin = windowOf(version(40, 40), version(160, 0), 1_200_000, 1_230_000)
    const result = look(thin)
    expect(result.measurements.some((m) => m.window !== undefined)).toBe(false)
    expect(result.verdict).toBe('Successful')
    expect(result.measurements.find((m) => m.check === 'errorRateVsStable')!.alpha).toBe(look().measurements.find((m) => m.check === 'errorRateVsStable')!.alpha)
  })

  it('judges latency on it too when a p99 limit is set', () => {
    const slowLately = windowOf(version(600, 0, 60), version(2400, 0), 1_200_000, 1_230_000)
    const result = look(slowLately, {latencyP99Ms: 500})
    expect(result.measurements.find((m) => m.window !== undefined && m.check === 'latencyP99')?.verdict).toBe('Failed')
    expect(result.verdict).toBe('Failed')
  })
})
