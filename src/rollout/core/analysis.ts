/**
 * The judge: one look at a window of per-request counts, canary against stable over the same window.
 * `evaluate` is the only place in canary that compares a measurement with a threshold.
 *
 * Method (docs/analysis.md has the derivation):
 * - fewer than `minRequests` canary requests → Inconclusive, never Failed;
 * - success-rate threshold: broken only when the Clopper–Pearson *upper* bound of the canary's
 *   success rate is below it, so a canary sitting exactly at the threshold is not failed by noise;
 * - p99 threshold: broken only when the lower bound of the share of requests slower than the
 *   limit is above 1 % (p99 ≤ L ⇔ P(latency > L) ≤ 1 %), counted from the histogram buckets;
 * - canary worse than stable: conditional binomial test (given the window's total errors, the
 *   canary's share of them is Binomial(errors, canaryRequests / allRequests) when both error rates
 *   are equal; exact for Poisson rates, conservative next to Fisher's exact test for binomial ones);
 * - once a step has lasted longer than the recent window (the last RECENT_WINDOW_INTERVALS
 *   intervals), the statistical checks also run on that window alone, so a canary that turns bad
 *   late is not diluted by its healthy history;
 * - every check spends its share of `maxFalsePositiveRate` over looks as alpha · 6/(π²k²), so the
 *   false-alarm probability over the whole rollout stays below the budget however often we look.
 */
import {assertNever} from './assert-never.js'
import type {LatencyBucket, VersionMetrics, WindowMetrics} from './metrics.js'
import {alphaForLook, binomialLowerBound, binomialUpperBound, binomialUpperTail} from './statistics.js'
import type {AnalysisPolicy, AnalysisResult, Measurement, Verdict} from './types.js'

/** One configured check; `evaluate` turns it and a window into a Measurement. */
export type AnalysisCheck =
  | {readonly kind: 'requests'; readonly minRequests: number}
  | {readonly kind: 'ready'}
  | {readonly kind: 'successRate'; readonly minPercent: number}
  | {readonly kind: 'latencyP99'; readonly maxMs: number}
  | {readonly kind: 'errorRateVsStable'}

/** The window plus what else a check may need. */
export interface CheckInput {
  readonly metrics: WindowMetrics
  readonly canaryReady: boolean
  /** Error probability this check may spend at this look. */
  readonly alpha: number
}

/** The share of requests allowed above the p99 limit. */
const P99_TAIL_SHARE = 0.01

/** Length of the recent window, in analysis intervals. */
export const RECENT_WINDOW_INTERVALS = 3

/** The recent window's length: checks also run on it once a step has lasted longer. */
export function recentWindowMs(policy: AnalysisPolicy): number {
  return RECENT_WINDOW_INTERVALS * policy.intervalMs
}

/** The checks a policy asks for, statistical ones last. */
export function checksOf(policy: AnalysisPolicy): AnalysisCheck[] {
  const checks: AnalysisCheck[] = [{kind: 'ready'}, {kind: 'requests', minRequests: policy.minRequests}]
  if (policy.successRatePercent !== undefined) checks.push({kind: 'successRate', minPercent: policy.successRatePercent})
  if (policy.latencyP99Ms !== undefined) checks.push({kind: 'latencyP99', maxMs: policy.latencyP99Ms})
  checks.push({kind: 'errorRateVsStable'})
  return checks
}

/** Checks that can fail by chance and therefore share the false-positive budget. */
function isStatistical(check: AnalysisCheck): boolean {
  return isStatisticalCheck(check.kind)
}

function isStatisticalCheck(kind: AnalysisCheck['kind']): boolean {
  return kind === 'successRate' || kind === 'latencyP99' || kind === 'errorRateVsStable'
}

/** Compares one measurement with its threshold. The only such comparison in canary. */
export function evaluate(check: AnalysisCheck, input: CheckInput): Measurement {
  const {canary, stable} = input.metrics
  switch (check.kind) {
    case 'ready':
      return input.canaryReady
        ? {check: 'ready', value: 1, verdict: 'Successful', note: 'canary is ready'}
        : {check: 'ready', value: 0, verdict: 'Failed', note: 'canary has no ready replica'}
    case 'requests': {
      const enough = canary.requests >= check.minRequests
      return {
        check: 'requests',
        value: canary.requests,
        stableValue: stable.requests,
        threshold: check.minRequests,
        verdict: enough ? 'Successful' : 'Inconclusive',
        note: enough ? `${canary.requests} canary requests` : `${canary.requests} of ${check.minRequests} canary requests needed`,
      }
    }
    case 'successRate': {
      const successes = canary.requests - canary.errors
      const upper = binomialUpperBound(successes, canary.requests, input.alpha) * 100
      const broken = canary.requests > 0 && upper < check.minPercent
      return {
        check: 'successRate',
        value: percentOrNull(successes, canary.requests),
        stableValue: percentOrNull(stable.requests - stable.errors, stable.requests),
        threshold: check.minPercent,
        bound: canary.requests > 0 ? upper : null,
        alpha: input.alpha,
        verdict: canary.requests === 0 ? 'Inconclusive' : broken ? 'Failed' : 'Successful',
        note: canary.requests === 0
          ? 'no canary requests in the window'
          : broken
            ? `success rate at most ${formatPercent(upper)} (${formatConfidence(input.alpha)} confidence), below ${check.minPercent} %`
            : `success rate could be ${formatPercent(upper)}, not below ${check.minPercent} %`,
      }
    }
    case 'latencyP99': {
      const limit = bucketAtOrAbove(canary.latency, check.maxMs / 1000)
      const slower = limit === undefined ? 0 : canary.requests - limit.count
      const lower = binomialLowerBound(slower, canary.requests, input.alpha)
      const broken = canary.requests > 0 && lower > P99_TAIL_SHARE
      const limitText = limit === undefined ? 'no bucket bound' : `${formatMs(limit.leSeconds * 1000)}`
      return {
        check: 'latencyP99',
        value: p99Ms(canary),
        stableValue: p99Ms(stable),
        threshold: check.maxMs,
        bound: canary.requests > 0 ? lower * 100 : null,
        alpha: input.alpha,
        verdict: canary.requests === 0 ? 'Inconclusive' : broken ? 'Failed' : 'Successful',
        note: canary.requests === 0
          ? 'no canary requests in the window'
          : broken
            ? `at least ${formatPercent(lower * 100)} of canary requests slower than ${limitText}, more than 1 %`
            : `${slower} of ${canary.requests} canary requests slower than ${limitText}`,
      }
    }
    case 'errorRateVsStable': {
      const pValue = worseThanStablePValue(canary, stable)
      const worse = pValue !== null && pValue <= input.alpha
      return {
        check: 'errorRateVsStable',
        value: percentOrNull(canary.errors, canary.requests),
        stableValue: percentOrNull(stable.errors, stable.requests),
        pValue,
        alpha: input.alpha,
        verdict: pValue === null ? 'Inconclusive' : worse ? 'Failed' : 'Successful',
        note: pValue === null
          ? 'no stable traffic in the window to compare with'
          : worse
            ? `canary errors more often than stable (p = ${pValue.toPrecision(2)} ≤ ${input.alpha.toPrecision(2)})`
            : `no evidence the canary errors more often than stable (p = ${pValue.toPrecision(2)})`,
      }
    }
    default:
      return assertNever(check)
  }
}

/**
 * One look: evaluate every check over the step's window and, when given and big enough (at least
 * `minRequests` canary requests), the statistical checks over the recent window too. `look` is the
 * 1-based number of this look in the rollout; the look's share of the false-positive budget is
 * split evenly among the statistical checks it runs, so the recent window costs no extra budget.
 */
export function judge(input: {readonly metrics: WindowMetrics; readonly recentMetrics?: WindowMetrics; readonly canaryReady: boolean; readonly policy: AnalysisPolicy; readonly look: number; readonly atMs: number; readonly windowStartMs: number; readonly canaryWeight: number}): AnalysisResult {
  const checks = checksOf(input.policy)
  const statistical = checks.filter(isStatistical)
  const recent = input.recentMetrics !== undefined && input.recentMetrics.canary.requests >= input.policy.minRequests ? input.recentMetrics : undefined
  const tests = statistical.length * (recent === undefined ? 1 : 2)
  const alpha = alphaForLook(input.policy.maxFalsePositiveRate / Math.max(1, tests), input.look)
  const evaluated = checks.map((check) => evaluate(check, {metrics: input.metrics, canaryReady: input.canaryReady, alpha}))
  // Too few requests: report the numbers, but no check may call the canary Failed on them.
  const tooFew = evaluated.some((m) => m.check === 'requests' && m.verdict !== 'Successful')
  const measurements = tooFew ? evaluated.map((m) => (isStatisticalCheck(m.check) && m.verdict === 'Failed' ? {...m, verdict: 'Inconclusive' as const, note: `not judged below minRequests (${m.note})`} : m)) : evaluated
  const recentMeasurements = recent === undefined || tooFew ? [] : statistical.map((check) => inRecentWindow(evaluate(check, {metrics: recent, canaryReady: input.canaryReady, alpha}), recent))
  const all = [...measurements, ...recentMeasurements]
  return {look: input.look, atMs: input.atMs, windowStartMs: input.windowStartMs, canaryWeight: input.canaryWeight, verdict: combine(all), measurements: all}
}

function inRecentWindow(measurement: Measurement, recent: WindowMetrics): Measurement {
  const seconds = Math.round((recent.untilMs - recent.sinceMs) / 1000)
  return {...measurement, window: {kind: 'recent', sinceMs: recent.sinceMs}, note: `last ${seconds} s: ${measurement.note}`}
}

/**
 * The look's verdict: not ready → Failed; too few requests → Inconclusive (even if other checks
 * look bad: small samples are exactly when they mislead); then Failed if any check failed.
 */
function combine(measurements: readonly Measurement[]): Verdict {
  const by = (check: Measurement['check']) => measurements.find((m) => m.check === check)
  if (by('ready')?.verdict === 'Failed') return 'Failed'
  if (by('requests')?.verdict !== 'Successful') return 'Inconclusive'
  if (measurements.some((m) => m.verdict === 'Error')) return 'Error'
  if (measurements.some((m) => m.verdict === 'Failed')) return 'Failed'
  if (measurements.some((m) => m.verdict === 'Inconclusive' && m.check !== 'errorRateVsStable')) return 'Inconclusive'
  return 'Successful'
}

/** A look whose metrics could not be read. */
export function errorResult(input: {readonly look: number; readonly atMs: number; readonly windowStartMs: number; readonly canaryWeight: number; readonly error: string}): AnalysisResult {
  return {
    look: input.look,
    atMs: input.atMs,
    windowStartMs: input.windowStartMs,
    canaryWeight: input.canaryWeight,
    verdict: 'Error',
    measurements: [{check: 'requests', value: null, verdict: 'Error', note: `metrics unavailable: ${input.error}`}],
  }
}

/**
 * One-sided p-value of "the canary's error rate is higher than stable's": conditional on the
 * window's total errors E, canary errors ~ Binomial(E, nCanary / (nCanary + nStable)) under equal
 * rates (docs/analysis.md). Null when either version had no requests.
 */
export function worseThanStablePValue(canary: VersionMetrics, stable: VersionMetrics): number | null {
  if (stable.requests === 0 || canary.requests === 0) return null
  const totalErrors = canary.errors + stable.errors
  if (totalErrors === 0) return 1
  const canaryShare = canary.requests / (canary.requests + stable.requests)
  return binomialUpperTail(canary.errors, totalErrors, canaryShare)
}

/** p99 in ms interpolated inside the histogram bucket holding the 99th percentile; null without data. */
export function p99Ms(metrics: VersionMetrics): number | null {
  return quantileMs(metrics.latency, metrics.requests, 0.99)
}

/** Quantile `q` in ms from cumulative buckets (linear inside a bucket, like Prometheus' histogram_quantile). */
export function quantileMs(buckets: readonly LatencyBucket[], requests: number, q: number): number | null {
  if (requests <= 0 || buckets.length === 0) return null
  const rank = q * requests
  let previousLe = 0
  let previousCount = 0
  for (const bucket of buckets) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.leSeconds)) return previousLe * 1000
      const inBucket = bucket.count - previousCount
      const fraction = inBucket === 0 ? 1 : (rank - previousCount) / inBucket
      return (previousLe + (bucket.leSeconds - previousLe) * fraction) * 1000
    }
    previousLe = bucket.leSeconds
    previousCount = bucket.count
  }
  return previousLe * 1000
}

/** The smallest bucket bound ≥ limitSeconds: counting "slower than it" never over-counts slow requests. */
function bucketAtOrAbove(buckets: readonly LatencyBucket[], limitSeconds: number): LatencyBucket | undefined {
  return buckets.find((b) => Number.isFinite(b.leSeconds) && b.leSeconds >= limitSeconds)
}

function percentOrNull(part: number, whole: number): number | null {
  return whole > 0 ? (part / whole) * 100 : null
}

function formatPercent(value: number): string {
  return `${value.toFixed(value >= 99 ? 3 : 2)} %`
}

function formatConfidence(alpha: number): string {
  return `${((1 - alpha) * 100).toPrecision(4)} %`
}

function formatMs(value: number): string {
  return `${Math.round(value)} ms`
}
