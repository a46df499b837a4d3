import {describe, expect, it} from 'vitest'

import {CHECKS, evaluate, guardBound, judge, judgePolicyOf, p99Ms} from '../../../src/rollout/core/analysis.js'
import {NO_EVIDENCE, countsOf, judgeBlocks, judgeEvidence, type Evidence} from '../../../src/rollout/core/evidence.js'
import type {AnalysisPolicy} from '../../../src/rollout/core/types.js'
import {aPolicy, blocksOf, provenHealthy, version, windowOf} from '../builders.js'

/** One look whose guards judge `canary`/`stable` as the counts since the last look, on top of `evidence`. */
function lookAt(canary: ReturnType<typeof version>, stable: ReturnType<typeof version>, policy: Partial<AnalysisPolicy> = {}, evidence: Evidence = provenHealthy()) {
  const withCounts: Evidence = {...evidence, sinceLook: {canary: countsOf(canary), stable: countsOf(stable)}}
  return judge({metrics: windowOf(canary, stable), evidence: withCounts, canaryReady: true, policy: aPolicy(policy), look: 1, atMs: 10_000, windowStartMs: 0, canaryWeight: 20})
}

describe('judging one look', () => {
  it.each([
    ['a canary with fewer than minRequests requests at this weight is inconclusive', version(49, 0), version(1000, 5), 'Inconclusive'],
    ['a canary proven within the tolerance, meeting the guards, passes', version(200, 1), version(800, 4), 'Successful'],
    ['a canary clearly below the success guard, stable clean, fails', version(500, 40), version(2000, 2), 'Failed'],
    ['a canary below the success guard with stable just as bad holds (common mode)', version(500, 40), version(2000, 160), 'Inconclusive'],
    ['a canary at 100 % weight (no stable traffic) is judged on the evidence so far and its guards', version(500, 1), version(0, 0), 'Successful'],
  ])('%s', (_name, canary, stable, expected) => {
    expect(lookAt(canary, stable).verdict).toBe(expected)
  })

  it('is Inconclusive without evidence, however clean the window: absence of errors is not evidence', () => {
    const result = lookAt(version(200, 0), version(800, 0), {}, NO_EVIDENCE)
    expect(result.verdict).toBe('Inconclusive')
    expect(result.measurements.find((m) => m.check === 'errorRateVsStable')?.note).toMatch(/collecting: evidence within 1.00 of 20.0 to pass, worse 1.00 of 133 to roll back/)
  })

  it('fails on evidence that the canary is worse than the tolerance, with the ratio, its interval and the evidence', () => {
    const failing = judgeBlocks(blocksOf(120, {requests: 20, errors: 2}, {requests: 80, errors: 1}), judgePolicyOf(aPolicy())).evidence
    const result = lookAt(version(200, 20), version(800, 1), {successRatePercent: undefined}, failing)
    expect(result.verdict).toBe('Failed')
    const m = result.measurements.find((x) => x.check === 'errorRateVsStable')!
    expect(m.verdict).toBe('Failed')
    expect(m.ratio).toBeCloseTo(8, 5)
    expect(m.ratioInterval?.lower).toBeGreaterThan(1.5)
    expect(m.evidence?.rollback).toBeGreaterThanOrEqual(m.evidence!.rollbackNeeded)
    expect(m.evidence?.rollbackNeeded).toBeCloseTo(400 / 3, 9)
    expect(m.note).toMatch(/canary 10.00 %, stable 1.25 %, ratio 8.00× \[\d+\.\d+×, \d+\.\d+×\], tolerated 1.50×; worse than the tolerance/)
  })

  it('says there were no canary requests since the last look instead of quoting a bound computed from none', () => {
    const result = lookAt(version(0, 0), version(1000, 5), {latencyP99Ms: 500})
    for (const check of ['successRate', 'latencyP99'] as const) expect(result.measurements.find((m) => m.check === check)?.note).toBe('no canary requests since the last look')
  })

  it('does not fail a canary sitting exactly at the success guard (the naive check would, half the time)', () => {
    const result = lookAt(version(1000, 6), version(4000, 20), {successRatePercent: 99.5})
    const measured = result.measurements.find((m) => m.check === 'successRate')!
    expect(measured.value).toBeLessThan(99.5)
    expect(measured.bound).toBeGreaterThan(99.5)
    expect(measured.verdict).toBe('Successful')
  })

  it('fails a p99 guard only when significantly more than 1 % of requests are slower, at the exact bucket bound', () => {
    const policy = {latencyP99Ms: 500, successRatePercent: undefined}
    expect(lookAt(version(1000, 0, 12), version(1000), policy).measurements.find((m) => m.check === 'latencyP99')?.verdict).toBe('Successful')
    const slow = lookAt(version(1000, 0, 60), version(1000), policy).measurements.find((m) => m.check === 'latencyP99')!
    expect(slow).toMatchObject({verdict: 'Failed', boundMs: 500})
    expect(slow.note).toMatch(/slower than 500 ms, more than 1 %/)
  })

  it('judges a p99 guard that is not a bucket bound at the bound below it, and says so', () => {
    // Buckets 0.1, 0.5, 1 s: a 700 ms guard is judged at 500 ms (never at 1 s, which would hide slow requests).
    const slow = lookAt(version(1000, 0, 60), version(1000), {latencyP99Ms: 700, successRatePercent: undefined}).measurements.find((m) => m.check === 'latencyP99')!
    expect(slow.boundMs).toBe(500)
    expect(slow.note).toMatch(/slower than 500 ms \(the histogram's largest bucket bound under 700 ms\)/)
  })

  it('holds (does not fail) a p99 guard that stable breaks too', () => {
    const both = lookAt(version(1000, 0, 60), version(4000, 0, 240), {latencyP99Ms: 500, successRatePercent: undefined})
    expect(both.measurements.find((m) => m.check === 'latencyP99')).toMatchObject({verdict: 'Inconclusive', stableBreaks: true})
    expect(both.verdict).toBe('Inconclusive')
  })

  it('is Failed when the canary has no ready replica, whatever the numbers', () => {
    const result = judge({metrics: windowOf(version(200, 0), version(800, 0)), evidence: provenHealthy(), canaryReady: false, policy: aPolicy(), look: 1, atMs: 1, windowStartMs: 0, canaryWeight: 20})
    expect(result.verdict).toBe('Failed')
  })

  it('reports latency against stable as not judged when the source has no histogram', () => {
    const noHistogram = judgeBlocks(blocksOf(10, {requests: 20, errors: 0}, {requests: 80, errors: 0}).map((b) => ({...b, canary: {...b.canary, latency: []}, stable: {...b.stable, latency: []}})), judgePolicyOf(aPolicy()))
    expect(noHistogram.judgment.latency.measured).toBe(false)
    const m = evaluate({kind: 'latencyVsStable'}, {metrics: windowOf(version(20), version(80)), sinceLook: noHistogram.evidence.sinceLook, stableBefore: {requests: 0, errors: 0}, errorRate: noHistogram.judgment.errorRate, latency: noHistogram.judgment.latency, canaryReady: true, alpha: 0.01})
    expect(m).toMatchObject({verdict: 'Inconclusive', value: null})
  })
})

describe('stable degraded (common mode without guards)', () => {
  const judged = judgeEvidence(NO_EVIDENCE, judgePolicyOf(aPolicy()))
  const baseline = (recent: {requests: number; errors: number}, before: {requests: number; errors: number}) =>
    evaluate({kind: 'stableBaseline'}, {metrics: windowOf(version(20), version(80)), sinceLook: {canary: countsOf(version(20)), stable: countsOf(version(recent.requests, recent.errors))}, stableBefore: before, errorRate: judged.errorRate, latency: judged.latency, canaryReady: true, alpha: 0.01})

  it('holds when stable errs far more since the last look than before, with the numbers', () => {
    const m = baseline({requests: 2400, errors: 240}, {requests: 24_000, errors: 120})
    expect(m).toMatchObject({verdict: 'Inconclusive', stableBreaks: true})
    expect(m.note).toMatch(/stable errors 10.00 % since the last look against 0.50 % at earlier looks .*: stable degraded, holding the weight/)
  })

  it.each([
    ['a clump of 20 errors in one look', {requests: 2400, errors: 32}, {requests: 24_000, errors: 120}],
    ['too little stable history', {requests: 2400, errors: 240}, {requests: 500, errors: 2}],
    ['no stable requests since the last look', {requests: 0, errors: 0}, {requests: 24_000, errors: 120}],
  ])('does not hold for %s', (_name, recent, before) => {
    expect(baseline(recent, before).verdict).toBe('Successful')
  })
})

describe('guard bucket bounds', () => {
  it.each([
    [[0.1, 0.25, 0.5], 0.25, 0.25],
    [[0.1, 0.25, 0.5], 0.2, 0.1],
    [[0.1, 0.25, 0.5], 0.6, 0.5],
    [[0.1, 0.25, 0.5], 0.05, null],
    [[0.001, 0.0025], 0.0025, 0.0025],
  ])('bounds %j, limit %f s → %s', (bounds, limit, expected) => {
    expect(guardBound(bounds, limit)).toBe(expected)
  })
})

describe('evaluate, the one threshold comparison', () => {
  it('needs minRequests canary requests', () => {
    const judged = judgeEvidence(NO_EVIDENCE, judgePolicyOf(aPolicy()))
    const m = evaluate({kind: 'requests', minRequests: 100}, {metrics: windowOf(version(99), version(500)), sinceLook: NO_EVIDENCE.sinceLook, stableBefore: {requests: 0, errors: 0}, errorRate: judged.errorRate, latency: judged.latency, canaryReady: true, alpha: 0.01})
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

describe('the checks table', () => {
  it('has an entry for every check kind a saved rollout may name, and each entry measures its own kind', () => {
    const kinds = ['requests', 'ready', 'successRate', 'latencyP99', 'errorRateVsStable', 'latencyVsStable', 'stableBaseline'] as const
    expect(Object.keys(CHECKS).sort()).toEqual([...kinds].sort())
    const policy = aPolicy({successRatePercent: 99, latencyP99Ms: 250})
    const result = judge({metrics: windowOf(version(200, 1), version(800, 4)), evidence: provenHealthy(), canaryReady: true, policy, look: 1, atMs: 1, windowStartMs: 0, canaryWeight: 20})
    expect(result.measurements.map((m) => m.check).sort()).toEqual([...kinds].sort())
  })

  it('rolls back at once only on comparisons with stable, and names them errors and latency', () => {
    expect(Object.entries(CHECKS).filter(([, entry]) => entry.comparison !== undefined).map(([kind, entry]) => [kind, entry.comparison?.name])).toEqual([['errorRateVsStable', 'errors'], ['latencyVsStable', 'latency']])
  })
})
