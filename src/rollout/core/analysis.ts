/**
 * One look: the judge's evidence (`evidence.ts`, carried over the whole rollout) and the optional
 * absolute guards, turned into measurements with their numbers and a four-valued verdict.
 * `evaluate` is the only place in canary that compares a measurement with a threshold.
 *
 * - Comparisons with stable (errorRateVsStable, latencyVsStable) are anytime-valid: Failed when
 *   the evidence that the canary is worse than the tolerance reaches 2/maxFalsePositiveRate,
 *   Successful when the evidence that it is within the tolerance reaches 1/maxFalsePassRate.
 * - Guards (successRate, latencyP99) judge the counts since the previous look, canary and stable
 *   alike: broken by the canary alone counts towards `failureLimit`; broken by stable too is
 *   common mode (a shared dependency, load): the weight holds, nothing is rolled back.
 *   The p99 guard is judged at a histogram bucket bound: the limit itself when it is one, else
 *   the largest bound below it (never a bound above it, which would hide slow requests); the
 *   bound used is reported.
 * - The step's window must hold `minRequests` canary requests before the step may pass.
 * - Stable's own error rate since the last look far above its baseline (its rate at earlier
 *   looks where it was not degraded) is common mode too: the weight holds until stable recovers or
 *   the deadline passes.
 */
import {DEFAULT_ERROR_TOLERANCE, DEFAULT_LATENCY_TOLERANCE, DEFAULT_MAX_FALSE_PASS_RATE, judgeEvidence, slowerThan, type ComparisonJudgment, type Evidence, type JudgePolicy, type VersionCounts} from './evidence.js'
import type {LatencyBucket, VersionMetrics, WindowMetrics} from './metrics.js'
import {toleratedRate} from './sequential.js'
import {binomialLowerBound, binomialUpperBound} from './statistics.js'
import type {AnalysisPolicy, AnalysisResult, CheckKind, Measurement, Verdict} from './types.js'

/** One configured check; `evaluate` turns it and its input into a Measurement. */
export type AnalysisCheck =
  | {readonly kind: 'requests'; readonly minRequests: number}
  | {readonly kind: 'ready'}
  | {readonly kind: 'successRate'; readonly minPercent: number}
  | {readonly kind: 'latencyP99'; readonly maxMs: number}
  | {readonly kind: 'errorRateVsStable'}
  | {readonly kind: 'latencyVsStable'}
  | {readonly kind: 'stableBaseline'}

/** What the checks read. */
export interface CheckInput {
  /** The step's window (since the weight was set): the requests check counts it. */
  readonly metrics: WindowMetrics
  /** Counts since the previous look: the guards judge them. */
  readonly sinceLook: {readonly canary: VersionCounts; readonly stable: VersionCounts}
  /** Stable's baseline: its counts at earlier looks where it was not degraded. */
  readonly stableBefore: {readonly requests: number; readonly errors: number}
  /** The judge's evidence over the rollout, judged. */
  readonly errorRate: ComparisonJudgment
  readonly latency: ComparisonJudgment & {readonly measured: boolean}
  readonly canaryReady: boolean
  /** Error probability of one guard's confidence bound. */
  readonly alpha: number
}

/** The share of requests allowed above the p99 limit. */
const P99_TAIL_SHARE = 0.01

/**
 * Stable counts as degraded (common mode: hold, not roll back) when its error rate since the last
 * look is significantly above 3 × its rate before, and above it + 0.5 points: loose enough that a
 * clump of errors in one look does not hold the rollout, tight enough for an outage.
 */
const STABLE_DEGRADED = {ratio: 3, points: 0.5}
/** Stable requests in its baseline needed to call it degraded. */
const STABLE_BASELINE_REQUESTS = 1000

/** The judge's policy with the defaults filled in. */
export function judgePolicyOf(policy: AnalysisPolicy): JudgePolicy {
  return {
    errorTolerance: policy.errorTolerance ?? DEFAULT_ERROR_TOLERANCE,
    latencyTolerance: policy.latencyTolerance ?? DEFAULT_LATENCY_TOLERANCE,
    maxFalsePositiveRate: policy.maxFalsePositiveRate,
    maxFalsePassRate: policy.maxFalsePassRate ?? DEFAULT_MAX_FALSE_PASS_RATE,
  }
}

/** The checks a policy asks for. */
export function checksOf(policy: AnalysisPolicy): AnalysisCheck[] {
  const checks: AnalysisCheck[] = [{kind: 'ready'}, {kind: 'requests', minRequests: policy.minRequests}, {kind: 'errorRateVsStable'}, {kind: 'latencyVsStable'}, {kind: 'stableBaseline'}]
  if (policy.successRatePercent !== undefined) checks.push({kind: 'successRate', minPercent: policy.successRatePercent})
  if (policy.latencyP99Ms !== undefined) checks.push({kind: 'latencyP99', maxMs: policy.latencyP99Ms})
  return checks
}

/** How a measurement's value reads: a count, a percentage, or milliseconds. */
export type CheckUnit = 'count' | 'percent' | 'ms'

/** Everything canary knows about one kind of check: how to measure it and how the rollout and the views treat its result. */
export interface CheckEntry<K extends CheckKind> {
  /** Measures and compares (the only comparisons of measurements with thresholds in canary). */
  readonly evaluate: (check: Extract<AnalysisCheck, {kind: K}>, input: CheckInput) => Measurement
  /** The unit of `value` and `stableValue`. */
  readonly unit: CheckUnit
  /** A comparison with stable by evidence: Failed rolls back at once, without `failureLimit`; `name` is its word in messages. */
  readonly comparison?: {readonly name: 'errors' | 'latency'}
  /** Failed outranks a look's Error (an unready canary fails whatever the metrics say). */
  readonly failsBeforeError?: boolean
  /** Whether an Inconclusive result holds the step (a check that could not measure at all may not). */
  readonly holds: (m: Measurement) => boolean
  /** Whether the decision log's look line shows it (besides failures and common-mode holds). */
  readonly inLookLine: (m: Measurement) => boolean
  /** Too little data: named first when a look is Inconclusive. */
  readonly shortOfData?: boolean
  /** Its `stableBreaks` means stable itself degraded: stable's counts since the last look stay out of its baseline. */
  readonly stableDegradation?: boolean
}

const always = (): boolean => true
const never = (): boolean => false
const measured = (m: Measurement): boolean => m.value !== null

/** The checks, one entry per kind: adding a check is adding an entry (and its kind). */
export const CHECKS: {readonly [K in CheckKind]: CheckEntry<K>} = {
  ready: {
    unit: 'count',
    failsBeforeError: true,
    holds: always,
    inLookLine: never,
    evaluate: (_check, input) => input.canaryReady
      ? {check: 'ready', value: 1, verdict: 'Successful', note: 'canary is ready'}
      : {check: 'ready', value: 0, verdict: 'Failed', note: 'canary has no ready replica'},
  },
  requests: {
    unit: 'count',
    shortOfData: true,
    holds: always,
    inLookLine: (m) => m.verdict !== 'Successful',
    evaluate: (check, input) => {
      const {canary, stable} = input.metrics
      const enough = canary.requests >= check.minRequests
      return {
        check: 'requests',
        value: canary.requests,
        stableValue: stable.requests,
        threshold: check.minRequests,
        verdict: enough ? 'Successful' : 'Inconclusive',
        note: enough ? `${canary.requests} canary requests at this weight` : `${canary.requests} of ${check.minRequests} canary requests needed at this weight`,
      }
    },
  },
  errorRateVsStable: {
    unit: 'percent',
    comparison: {name: 'errors'},
    holds: always,
    inLookLine: always,
    evaluate: (_check, input) => comparisonMeasurement('errorRateVsStable', input.errorRate, 'errors'),
  },
  latencyVsStable: {
    unit: 'percent',
    comparison: {name: 'latency'},
    // Latency that cannot be judged (no histogram from the source) does not hold the rollout; latency that can, must pass.
    holds: measured,
    inLookLine: measured,
    evaluate: (_check, input) => {
      if (!input.latency.measured) return {check: 'latencyVsStable', value: null, boundMs: null, verdict: 'Inconclusive', note: 'not judged yet: stable needs a latency histogram with enough requests to set its p99 bound'}
      return comparisonMeasurement('latencyVsStable', input.latency, `requests slower than ${formatMs(input.latency.boundMs ?? 0)} (stable's p99 bucket)`)
    },
  },
  stableBaseline: {
    unit: 'percent',
    stableDegradation: true,
    holds: always,
    inLookLine: never,
    evaluate: (_check, input) => {
      const recent = input.sinceLook.stable
      const before = input.stableBefore
      const recentPercent = percentOrNull(recent.errors, recent.requests)
      const beforePercent = percentOrNull(before.errors, before.requests)
      if (recent.requests === 0 || before.requests < STABLE_BASELINE_REQUESTS) {
        return {check: 'stableBaseline', value: recentPercent, stableValue: beforePercent, verdict: 'Successful', note: 'not enough stable history to tell whether stable degraded'}
      }
      const limit = toleratedRate(STABLE_DEGRADED, (before.errors + 0.5) / (before.requests + 1))
      const lower = binomialLowerBound(recent.errors, recent.requests, input.alpha)
      const text = `stable errors ${formatPercent(recentPercent ?? 0)} since the last look against ${formatPercent(beforePercent ?? 0)} at earlier looks`
      return lower > limit
        ? {check: 'stableBaseline', value: recentPercent, stableValue: beforePercent, threshold: limit * 100, bound: lower * 100, stableBreaks: true, verdict: 'Inconclusive', note: `${text} (at least ${formatPercent(lower * 100)}): stable degraded, holding the weight, not the canary's fault`}
        : {check: 'stableBaseline', value: recentPercent, stableValue: beforePercent, threshold: limit * 100, bound: lower * 100, verdict: 'Successful', note: text}
    },
  },
  successRate: {
    unit: 'percent',
    holds: always,
    inLookLine: never,
    evaluate: (check, input) => {
      const canaryBreak = successRateBreak(input.sinceLook.canary, check.minPercent, input.alpha)
      const stableBreak = successRateBreak(input.sinceLook.stable, check.minPercent, input.alpha)
      const requests = input.sinceLook.canary.requests
      return guardMeasurement({
        check: 'successRate',
        value: percentOrNull(requests - input.sinceLook.canary.errors, requests),
        stableValue: percentOrNull(input.sinceLook.stable.requests - input.sinceLook.stable.errors, input.sinceLook.stable.requests),
        threshold: check.minPercent,
        bound: canaryBreak.bound,
      }, requests, canaryBreak.broken, stableBreak.broken, `success rate since the last look at most ${formatPercent(canaryBreak.bound ?? 0)} (${formatConfidence(input.alpha)} confidence), below ${check.minPercent} %`, `success rate since the last look could be ${formatPercent(canaryBreak.bound ?? 100)}, not below ${check.minPercent} %`)
    },
  },
  latencyP99: {
    unit: 'ms',
    holds: always,
    inLookLine: never,
    evaluate: (check, input) => {
      const boundSeconds = guardBound(input.sinceLook.canary.latency.boundsSeconds, check.maxMs / 1000)
      const canaryBreak = tailBreak(input.sinceLook.canary, boundSeconds, input.alpha)
      const stableBreak = tailBreak(input.sinceLook.stable, boundSeconds, input.alpha)
      const requests = input.sinceLook.canary.requests
      const limitText = boundSeconds === null ? 'no bucket bound' : boundSeconds * 1000 === check.maxMs ? formatMs(check.maxMs) : `${formatMs(boundSeconds * 1000)} (the histogram's largest bucket bound under ${formatMs(check.maxMs)})`
      return guardMeasurement({
        check: 'latencyP99',
        value: quantileMsOf(input.sinceLook.canary, 0.99),
        stableValue: quantileMsOf(input.sinceLook.stable, 0.99),
        threshold: check.maxMs,
        bound: canaryBreak.bound,
        boundMs: boundSeconds === null ? null : boundSeconds * 1000,
      }, boundSeconds === null ? 0 : requests, canaryBreak.broken, stableBreak.broken, `at least ${formatPercent(canaryBreak.bound ?? 0)} of canary requests since the last look slower than ${limitText}, more than 1 %`, `${canaryBreak.slow ?? 0} of ${requests} canary requests since the last look slower than ${limitText}`)
    },
  },
}

/** The table entry of a measurement's check. */
export function checkOf(m: Measurement): CheckEntry<CheckKind> {
  return CHECKS[m.check] as CheckEntry<CheckKind>
}

/** Compares one measurement with its threshold, through its table entry. */
export function evaluate<K extends CheckKind>(check: Extract<AnalysisCheck, {kind: K}>, input: CheckInput): Measurement {
  const entry = CHECKS[check.kind as K] as CheckEntry<K>
  return entry.evaluate(check, input)
}

function comparisonMeasurement(check: 'errorRateVsStable' | 'latencyVsStable', c: ComparisonJudgment, what: string): Measurement {
  const evidence = {rollback: c.rollbackEvidence, rollbackNeeded: c.rollbackNeeded, pass: c.passEvidence, passNeeded: c.passNeeded, blocks: c.blocks}
  const ratio = c.ratio === null ? 'ratio –' : `ratio ${formatRatio(c.ratio)}${c.ratioInterval === null ? '' : ` [${formatRatio(c.ratioInterval[0])}, ${formatRatio(c.ratioInterval[1])}]`}`
  const numbers = `${what}: canary ${formatPercentOrDash(c.canaryPercent)}, stable ${formatPercentOrDash(c.stablePercent)}, ${ratio}, tolerated ${formatRatio(c.toleratedRatio)}`
  const verdictText = c.verdict === 'Failed'
    ? `worse than the tolerance: evidence ${formatEvidence(c.rollbackEvidence)} ≥ ${formatEvidence(c.rollbackNeeded)}`
    : c.verdict === 'Successful'
      ? `within the tolerance: evidence ${formatEvidence(c.passEvidence)} ≥ ${formatEvidence(c.passNeeded)}`
      : `collecting: evidence within ${formatEvidence(c.passEvidence)} of ${formatEvidence(c.passNeeded)} to pass, worse ${formatEvidence(c.rollbackEvidence)} of ${formatEvidence(c.rollbackNeeded)} to roll back`
  return {
    check,
    value: c.canaryPercent,
    stableValue: c.stablePercent,
    ...(c.boundMs === undefined ? {} : {boundMs: c.boundMs}),
    ratio: finiteOrNull(c.ratio),
    ratioInterval: c.ratioInterval === null ? null : {lower: c.ratioInterval[0], upper: finiteOrNull(c.ratioInterval[1])},
    toleratedRatio: c.toleratedRatio,
    evidence,
    verdict: c.verdict,
    note: `${numbers}; ${verdictText}`,
  }
}

function guardMeasurement(base: Omit<Measurement, 'verdict' | 'note'>, requests: number, canaryBroken: boolean, stableBroken: boolean, brokenNote: string, okNote: string): Measurement {
  if (requests === 0) return {...base, verdict: 'Inconclusive', note: 'no canary requests since the last look'}
  if (canaryBroken && stableBroken) return {...base, stableBreaks: true, verdict: 'Inconclusive', note: `${brokenNote}; stable breaks it too (${describeStable(base)}): holding the weight, not the canary's fault`}
  if (canaryBroken) return {...base, stableBreaks: false, verdict: 'Failed', note: brokenNote}
  return {...base, stableBreaks: stableBroken, verdict: 'Successful', note: okNote}
}

function describeStable(m: Omit<Measurement, 'verdict' | 'note'>): string {
  if (m.stableValue === null || m.stableValue === undefined) return 'stable –'
  return CHECKS[m.check].unit === 'ms' ? `stable p99 ${formatMs(m.stableValue)}` : `stable ${formatPercent(m.stableValue)}`
}

/** Broken when the Clopper–Pearson upper bound of the success rate is below the threshold. */
function successRateBreak(counts: VersionCounts, minPercent: number, alpha: number): {broken: boolean; bound: number | null} {
  if (counts.requests <= 0) return {broken: false, bound: null}
  const upper = binomialUpperBound(counts.requests - counts.errors, counts.requests, alpha) * 100
  return {broken: upper < minPercent, bound: upper}
}

/** Broken when the lower bound of the share slower than the bound is above 1 % (p99 ≤ L ⇔ P(latency > L) ≤ 1 %). */
function tailBreak(counts: VersionCounts, boundSeconds: number | null, alpha: number): {broken: boolean; bound: number | null; slow: number | null} {
  if (boundSeconds === null || counts.requests <= 0) return {broken: false, bound: null, slow: null}
  const slow = slowerThan(counts, boundSeconds)
  if (slow === null) return {broken: false, bound: null, slow: null}
  const lower = binomialLowerBound(slow, counts.requests, alpha)
  return {broken: lower > P99_TAIL_SHARE, bound: lower * 100, slow}
}

/** The bucket bound a p99 guard is judged at: the limit when it is a bound, else the largest bound under it. */
export function guardBound(boundsSeconds: readonly number[], limitSeconds: number): number | null {
  let chosen: number | null = null
  // Bounds are compared in whole microseconds: 0.25 s and 250 ms are the same bound.
  const limit = Math.round(limitSeconds * 1e6)
  for (const le of boundsSeconds) if (Math.round(le * 1e6) <= limit) chosen = le
  return chosen
}

/**
 * One look. The verdict: not ready → Failed; a comparison with stable Failed → Failed; a guard
 * broken by the canary alone → Failed (decide counts these against `failureLimit`); too few
 * requests at this weight, a guard broken by both versions, or evidence still collecting →
 * Inconclusive; otherwise Successful.
 */
export function judge(input: {readonly metrics: WindowMetrics; readonly evidence: Evidence; readonly canaryReady: boolean; readonly policy: AnalysisPolicy; readonly look: number; readonly atMs: number; readonly windowStartMs: number; readonly canaryWeight: number}): AnalysisResult {
  const judgment = judgeEvidence(input.evidence, judgePolicyOf(input.policy))
  const checkInput: CheckInput = {metrics: input.metrics, sinceLook: input.evidence.sinceLook, stableBefore: input.evidence.stableBaseline ?? {requests: 0, errors: 0}, errorRate: judgment.errorRate, latency: judgment.latency, canaryReady: input.canaryReady, alpha: input.policy.maxFalsePositiveRate}
  const measurements = checksOf(input.policy).map((check) => evaluate(check, checkInput))
  return {look: input.look, atMs: input.atMs, windowStartMs: input.windowStartMs, canaryWeight: input.canaryWeight, verdict: combine(measurements), measurements}
}

/** A look's verdict from its measurements, by the table's flags. */
function combine(measurements: readonly Measurement[]): Verdict {
  if (measurements.some((m) => m.verdict === 'Failed' && checkOf(m).failsBeforeError === true)) return 'Failed'
  if (measurements.some((m) => m.verdict === 'Error')) return 'Error'
  if (measurements.some((m) => m.verdict === 'Failed')) return 'Failed'
  if (measurements.some((m) => m.verdict === 'Inconclusive' && checkOf(m).holds(m))) return 'Inconclusive'
  return 'Successful'
}

/** True when the look found stable itself degraded (its counts since the last look stay out of its baseline). */
export function stableDegraded(result: AnalysisResult): boolean {
  return result.measurements.some((m) => m.stableBreaks === true && checkOf(m).stableDegradation === true)
}

/** The comparison with stable that the evidence says is worse than the tolerance (rolls back at once), if any, with its name. */
export function failedComparison(result: AnalysisResult): {readonly measurement: Measurement; readonly name: string} | undefined {
  for (const m of result.measurements) {
    const comparison = checkOf(m).comparison
    if (comparison !== undefined && m.verdict === 'Failed') return {measurement: m, name: comparison.name}
  }
  return undefined
}

/** The measurements the decision log's look line shows: those the table asks for, and any common-mode hold. */
export function shownInLookLine(result: AnalysisResult): Measurement[] {
  return result.measurements.filter((m) => checkOf(m).inLookLine(m) || m.stableBreaks === true)
}

/** The measurement that explains an Inconclusive look: a common-mode hold first, then too little data, then the evidence still collecting. */
export function explainInconclusive(result: AnalysisResult): Measurement | undefined {
  return result.measurements.find((m) => m.stableBreaks === true && m.verdict === 'Inconclusive')
    ?? result.measurements.find((m) => checkOf(m).shortOfData === true && m.verdict === 'Inconclusive')
    ?? result.measurements.find((m) => m.verdict === 'Inconclusive' && checkOf(m).holds(m))
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

/** p99 in ms interpolated inside the histogram bucket holding the 99th percentile; null without data. */
export function p99Ms(metrics: VersionMetrics): number | null {
  return quantileMs(metrics.latency, metrics.requests, 0.99)
}

function quantileMsOf(counts: VersionCounts, q: number): number | null {
  const buckets: LatencyBucket[] = counts.latency.boundsSeconds.map((le, i) => ({leSeconds: le, count: counts.latency.counts[i] ?? 0}))
  buckets.push({leSeconds: Number.POSITIVE_INFINITY, count: counts.requests})
  return quantileMs(buckets, counts.requests, q)
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

function percentOrNull(part: number, whole: number): number | null {
  return whole > 0 ? (part / whole) * 100 : null
}

function finiteOrNull(value: number | null): number | null {
  return value === null || !Number.isFinite(value) ? null : value
}

function formatPercent(value: number): string {
  return `${value.toFixed(value >= 99 ? 3 : 2)} %`
}

function formatPercentOrDash(value: number | null): string {
  return value === null ? '–' : `${value.toFixed(value < 1 ? 3 : 2)} %`
}

function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '∞'
}

function formatEvidence(value: number): string {
  return value >= 1000 ? value.toExponential(1) : value.toPrecision(3)
}

function formatConfidence(alpha: number): string {
  return `${((1 - alpha) * 100).toPrecision(4)} %`
}

function formatMs(value: number): string {
  return `${Math.round(value)} ms`
}
