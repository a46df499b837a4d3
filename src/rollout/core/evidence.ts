/**
 * The judge's memory: evidence about the canary accumulated block by block over the whole
 * rollout, across looks and weight changes, and the verdict it supports. Pure; persisted in the
 * rollout state as plain JSON.
 *
 * Two comparisons with stable, each an anytime-valid pair of bets (`sequential.ts`):
 * - error rate: events are 5xx responses;
 * - latency: events are requests slower than stable's p99 bucket bound (the smallest histogram
 *   bound that at most 1 % of stable's requests exceeded, from stable's histogram before the
 *   block), so "canary slower than stable" is judged on the share of slow requests.
 * Each has a tolerance: a ratio and an absolute allowance in percentage points; the tolerated
 * canary rate is the larger of ratio × stable's rate and stable's rate + points.
 *
 * `judgeBlocks` is the documented programmatic entry (docs/analysis.md): per-block counts and
 * histograms in, a judgment with its numbers out.
 */
import type {LatencyBucket, VersionMetrics, WindowMetrics} from './metrics.js'
import {NO_BETS, betOnBlock, estimatedRatio, logPassEvidence, logRollbackEvidence, ratioOfShare, smoothedRate, toleratedRatio as ratioAt, type BetState, type Tolerance} from './sequential.js'
import {binomialLowerBound, binomialUpperBound} from './statistics.js'

export type {Tolerance}

/** What the judge needs from the analysis policy. */
export interface JudgePolicy {
  readonly errorTolerance: Tolerance
  readonly latencyTolerance: Tolerance
  /** Probability, over the whole rollout, of rolling back a canary within the tolerance. */
  readonly maxFalsePositiveRate: number
  /** Probability of passing a canary worse than the tolerance. */
  readonly maxFalsePassRate: number
}

/** Defaults `canary init` writes and the spec falls back to. */
export const DEFAULT_ERROR_TOLERANCE: Tolerance = {ratio: 1.5, points: 0.1, perMinute: 5}
export const DEFAULT_LATENCY_TOLERANCE: Tolerance = {ratio: 1.5, points: 0.5, perMinute: 30}
export const DEFAULT_MAX_FALSE_POSITIVE_RATE = 0.01
export const DEFAULT_MAX_FALSE_PASS_RATE = 0.05

/** A time block is at least this long: the proxy counts per second, and clumps are judged per block. */
export const BLOCK_MS = 1000
/** A block without requests of both versions is closed (and compares nothing) after this long. */
export const MAX_BLOCK_MS = 10_000
/** Stable requests needed before its p99 bucket bound is used to define "slow". */
export const MIN_STABLE_REQUESTS_FOR_LATENCY = 200
/** The quantile of stable's latency that defines a slow request. */
const SLOW_QUANTILE = 0.99

/** Cumulative histogram with finite bounds only (the +Inf bucket is the request count): JSON-safe. */
export interface Histogram {
  readonly boundsSeconds: readonly number[]
  readonly counts: readonly number[]
}

/** Counts of one version, JSON-safe. */
export interface VersionCounts {
  readonly requests: number
  readonly errors: number
  readonly latency: Histogram
}

const NO_HISTOGRAM: Histogram = {boundsSeconds: [], counts: []}
const NO_COUNTS: VersionCounts = {requests: 0, errors: 0, latency: NO_HISTOGRAM}

/** Evidence over the rollout so far. */
export interface Evidence {
  readonly errors: BetState
  readonly latency: BetState
  /** Requests and errors of each version over every block so far. */
  readonly canary: VersionCounts
  readonly stable: VersionCounts
  /** Total length of those blocks (absent in states saved before it existed): the request rate for the per-minute allowance shown. */
  readonly spanMs?: number
  /** The slow bound used for the latest block, in seconds; null until stable has enough requests. */
  readonly slowBoundSeconds: number | null
  /** Stable's requests and errors at the looks where it was not degraded: its baseline (see analysis.ts, stableBaseline). */
  readonly stableBaseline?: {readonly requests: number; readonly errors: number}
  /** Counts since the last look (the absolute guards judge these). */
  readonly sinceLook: {readonly canary: VersionCounts; readonly stable: VersionCounts}
  /** The block being filled, from `startMs`. */
  readonly pending?: {readonly startMs: number; readonly canary: VersionCounts; readonly stable: VersionCounts}
  /** The last cumulative window read at `atMs` (the metric source reports since the weight was set), to take differences. */
  readonly lastReading?: {readonly sinceMs: number; readonly atMs: number; readonly canary: VersionCounts; readonly stable: VersionCounts}
}

/** No evidence yet. */
export const NO_EVIDENCE: Evidence = {errors: NO_BETS, latency: NO_BETS, canary: NO_COUNTS, stable: NO_COUNTS, spanMs: 0, slowBoundSeconds: null, sinceLook: {canary: NO_COUNTS, stable: NO_COUNTS}}

/** Converts a source's cumulative buckets (last one +Inf) to a JSON-safe histogram. */
export function histogramOf(buckets: readonly LatencyBucket[]): Histogram {
  const finite = buckets.filter((b) => Number.isFinite(b.leSeconds))
  return {boundsSeconds: finite.map((b) => b.leSeconds), counts: finite.map((b) => b.count)}
}

/** VersionMetrics → VersionCounts. */
export function countsOf(metrics: VersionMetrics): VersionCounts {
  return {requests: metrics.requests, errors: metrics.errors, latency: histogramOf(metrics.latency)}
}

function sameBounds(a: Histogram, b: Histogram): boolean {
  return a.boundsSeconds.length === b.boundsSeconds.length && a.boundsSeconds.every((le, i) => le === b.boundsSeconds[i])
}

function addHistograms(a: Histogram, b: Histogram): Histogram {
  if (a.boundsSeconds.length === 0) return b
  if (b.boundsSeconds.length === 0) return a
  // A source whose buckets changed starts a new histogram: sums over different bounds mean nothing.
  if (!sameBounds(a, b)) return b
  return {boundsSeconds: a.boundsSeconds, counts: a.counts.map((c, i) => c + (b.counts[i] ?? 0))}
}

function addCounts(a: VersionCounts, b: VersionCounts): VersionCounts {
  return {requests: a.requests + b.requests, errors: a.errors + b.errors, latency: addHistograms(a.latency, b.latency)}
}

/** later − earlier, never negative (a counter reset or a Prometheus extrapolation reads as "nothing new"). */
function subtractCounts(later: VersionCounts, earlier: VersionCounts): VersionCounts {
  const latency = sameBounds(later.latency, earlier.latency)
    ? {boundsSeconds: later.latency.boundsSeconds, counts: later.latency.counts.map((c, i) => Math.max(0, c - (earlier.latency.counts[i] ?? 0)))}
    : later.latency
  return {requests: Math.max(0, later.requests - earlier.requests), errors: Math.max(0, later.errors - earlier.errors), latency}
}

/** Requests slower than `boundSeconds` (which must be one of the histogram's bounds), or null. */
export function slowerThan(counts: VersionCounts, boundSeconds: number): number | null {
  const index = counts.latency.boundsSeconds.indexOf(boundSeconds)
  if (index < 0) return null
  return Math.max(0, counts.requests - (counts.latency.counts[index] ?? 0))
}

/**
 * Stable's p99 bucket bound: the largest histogram bound that at least 1 % of stable's requests
 * exceeded (the bound at or below its p99), so slow requests are frequent enough to count; the
 * smallest bound when even that one is exceeded less often. Null with too few stable requests.
 */
export function slowBound(stable: VersionCounts): number | null {
  if (stable.requests < MIN_STABLE_REQUESTS_FOR_LATENCY) return null
  const {boundsSeconds, counts} = stable.latency
  let chosen: number | null = boundsSeconds[0] ?? null
  for (let i = 0; i < boundsSeconds.length; i++) {
    if (stable.requests - (counts[i] ?? 0) >= (1 - SLOW_QUANTILE) * stable.requests) chosen = boundsSeconds[i] ?? null
  }
  return chosen
}

/** The largest tolerated canary/stable rate ratio given stable's events and requests so far, at `requestsPerMinute` of traffic. */
export function toleratedRatio(tolerance: Tolerance, stableEvents: number, stableRequests: number, requestsPerMinute = 0): number {
  return ratioAt(tolerance, smoothedRate(stableEvents, stableRequests), requestsPerMinute)
}

/** Requests per minute of both versions over the blocks so far; 0 when unknown. */
export function requestsPerMinute(evidence: Evidence): number {
  const spanMs = evidence.spanMs ?? 0
  return spanMs > 0 ? ((evidence.canary.requests + evidence.stable.requests) * 60_000) / spanMs : 0
}

/**
 * Adds one block (non-cumulative counts from `startMs` to `endMs`) to the evidence. Every choice
 * for the block uses earlier blocks only, or its request counts and length (never its events).
 */
export function addBlock(evidence: Evidence, canary: VersionCounts, stable: VersionCounts, policy: JudgePolicy, startMs: number, endMs = startMs + BLOCK_MS): Evidence {
  const durationMs = Math.max(0, endMs - startMs)
  const traffic = {trafficRequests: evidence.canary.requests + evidence.stable.requests, trafficMs: evidence.spanMs ?? 0}
  const errors = betOnBlock(evidence.errors, {canaryEvents: canary.errors, stableEvents: stable.errors, canaryRequests: canary.requests, stableRequests: stable.requests, durationMs}, policy.errorTolerance, {events: evidence.stable.errors, requests: evidence.stable.requests, ...traffic})
  const bound = slowBound(evidence.stable)
  let latency = evidence.latency
  if (bound !== null) {
    const canarySlow = slowerThan(canary, bound)
    const stableSlow = slowerThan(stable, bound)
    const stableSlowSoFar = slowerThan(evidence.stable, bound) ?? 0
    if (canarySlow !== null && stableSlow !== null) {
      latency = betOnBlock(latency, {canaryEvents: canarySlow, stableEvents: stableSlow, canaryRequests: canary.requests, stableRequests: stable.requests, durationMs}, policy.latencyTolerance, {events: stableSlowSoFar, requests: evidence.stable.requests, ...traffic})
    }
  }
  return {
    ...evidence,
    errors,
    latency,
    canary: addCounts(evidence.canary, canary),
    stable: addCounts(evidence.stable, stable),
    spanMs: (evidence.spanMs ?? 0) + durationMs,
    slowBoundSeconds: bound,
  }
}

/**
 * Takes one reading of the metric source (cumulative since the weight was set), turns the new
 * part into the pending block, and adds the block once it spans at least BLOCK_MS.
 */
export function observeWindow(evidence: Evidence, reading: WindowMetrics, nowMs: number, policy: JudgePolicy): Evidence {
  const canaryNow = countsOf(reading.canary)
  const stableNow = countsOf(reading.stable)
  const last = evidence.lastReading
  // A new window (the weight changed) starts from zero.
  const fresh = last === undefined || last.sinceMs !== reading.sinceMs
  const canaryNew = fresh ? canaryNow : subtractCounts(canaryNow, last.canary)
  const stableNew = fresh ? stableNow : subtractCounts(stableNow, last.stable)
  // The new counts arrived since the previous reading (or since the window began): the block starts there.
  const pending = evidence.pending ?? {startMs: fresh ? reading.sinceMs : last.atMs, canary: NO_COUNTS, stable: NO_COUNTS}
  const filled = {startMs: pending.startMs, canary: addCounts(pending.canary, canaryNew), stable: addCounts(pending.stable, stableNew)}
  const next: Evidence = {
    ...evidence,
    lastReading: {sinceMs: reading.sinceMs, atMs: nowMs, canary: canaryNow, stable: stableNow},
    sinceLook: {canary: addCounts(evidence.sinceLook.canary, canaryNew), stable: addCounts(evidence.sinceLook.stable, stableNew)},
    pending: filled,
  }
  // A block closes after a second with requests of both versions (only then does it compare
  // anything; at low traffic a second often has none of one), or after MAX_BLOCK_MS regardless.
  // Where it ends depends on request counts only, never on errors, so the bets stay valid.
  const elapsed = nowMs - filled.startMs
  const bothSeen = filled.canary.requests > 0 && filled.stable.requests > 0
  if (elapsed < BLOCK_MS || (!bothSeen && elapsed < MAX_BLOCK_MS)) return next
  const {pending: _done, ...rest} = next
  return addBlock(rest, filled.canary, filled.stable, policy, filled.startMs, nowMs)
}

/** Clears the counts since the last look (after a look used them); stable's counts join its baseline unless it was degraded. */
export function lookTaken(evidence: Evidence, stableDegraded: boolean): Evidence {
  const baseline = evidence.stableBaseline ?? {requests: 0, errors: 0}
  const stable = evidence.sinceLook.stable
  return {
    ...evidence,
    stableBaseline: stableDegraded ? baseline : {requests: baseline.requests + stable.requests, errors: baseline.errors + stable.errors},
    sinceLook: {canary: NO_COUNTS, stable: NO_COUNTS},
  }
}

/**
 * The share of `maxFalsePositiveRate` each comparison spends (a union bound over the two): errors
 * get the larger part because they are what users see and where fast detection matters most;
 * latency gains evidence quickly enough from the many slow requests of a slower canary.
 */
export const FALSE_POSITIVE_SHARE = {errorRate: 0.75, latency: 0.25} as const

/** The rollback evidence each comparison needs: 1 / (its share of maxFalsePositiveRate). */
export function rollbackNeeded(policy: JudgePolicy, metric: keyof typeof FALSE_POSITIVE_SHARE): number {
  return 1 / (FALSE_POSITIVE_SHARE[metric] * policy.maxFalsePositiveRate)
}

/** True when either comparison has enough evidence to roll the canary back (cheap: checked at every reading). */
export function rollbackDue(evidence: Evidence, policy: JudgePolicy): boolean {
  return logRollbackEvidence(evidence.errors) >= Math.log(rollbackNeeded(policy, 'errorRate')) || logRollbackEvidence(evidence.latency) >= Math.log(rollbackNeeded(policy, 'latency'))
}

/** What one comparison says now. */
export interface ComparisonJudgment {
  readonly metric: 'errorRate' | 'latency'
  /** Canary's and stable's rate over the rollout so far, in percent (errors, or share slower than the bound). */
  readonly canaryPercent: number | null
  readonly stablePercent: number | null
  /** For latency: the bucket bound that defines "slow", in ms. */
  readonly boundMs?: number | null
  /** Estimated canary/stable rate ratio, and a 95 % interval for it (fixed-sample Clopper–Pearson on the event share: for reading, the decision uses the evidence). */
  readonly ratio: number | null
  readonly ratioInterval: readonly [number, number] | null
  /** The largest tolerated ratio now (the absolute allowance converted with stable's rate). */
  readonly toleratedRatio: number
  /** Evidence that the canary is worse than the tolerance, and the amount that rolls it back. */
  readonly rollbackEvidence: number
  readonly rollbackNeeded: number
  /** Evidence that the canary is within the tolerance, and the amount that passes it. */
  readonly passEvidence: number
  readonly passNeeded: number
  /** Blocks with events, and the events per version. */
  readonly blocks: number
  readonly canaryEvents: number
  readonly stableEvents: number
  /** Failed: worse than the tolerance; Successful: within it; Inconclusive: not yet known. */
  readonly verdict: 'Successful' | 'Failed' | 'Inconclusive'
}

/** The judgment of the evidence so far. `measured` is false for latency when there is no histogram to judge. */
export interface Judgment {
  readonly verdict: 'Successful' | 'Failed' | 'Inconclusive'
  readonly errorRate: ComparisonJudgment
  readonly latency: ComparisonJudgment & {readonly measured: boolean}
}

/** Judges the evidence: rollback thresholds split the false-positive rate between the two comparisons. */
export function judgeEvidence(evidence: Evidence, policy: JudgePolicy): Judgment {
  const passNeeded = 1 / policy.maxFalsePassRate
  const perMinute = requestsPerMinute(evidence)
  const errorRate = comparison('errorRate', evidence.errors, evidence.canary.errors, evidence.canary.requests, evidence.stable.errors, evidence.stable.requests, toleratedRatio(policy.errorTolerance, evidence.stable.errors, evidence.stable.requests, perMinute), rollbackNeeded(policy, 'errorRate'), passNeeded)
  const bound = evidence.slowBoundSeconds
  const canarySlow = bound === null ? null : slowerThan(evidence.canary, bound)
  const stableSlow = bound === null ? null : slowerThan(evidence.stable, bound)
  const measured = bound !== null && canarySlow !== null && stableSlow !== null
  const latencyComparison = comparison('latency', evidence.latency, canarySlow ?? 0, measured ? evidence.canary.requests : 0, stableSlow ?? 0, measured ? evidence.stable.requests : 0, toleratedRatio(policy.latencyTolerance, stableSlow ?? 0, evidence.stable.requests, perMinute), rollbackNeeded(policy, 'latency'), passNeeded)
  const latency = {...latencyComparison, boundMs: bound === null ? null : bound * 1000, measured}
  const verdict = errorRate.verdict === 'Failed' || latency.verdict === 'Failed'
    ? 'Failed'
    : errorRate.verdict === 'Successful' && (latency.verdict === 'Successful' || !measured)
      ? 'Successful'
      : 'Inconclusive'
  return {verdict, errorRate, latency}
}

function comparison(metric: ComparisonJudgment['metric'], bets: BetState, canaryEvents: number, canaryRequests: number, stableEvents: number, stableRequests: number, tolerated: number, rollbackNeeded: number, passNeeded: number): ComparisonJudgment {
  // Capped at e^700 so that the numbers stay finite in JSON; the thresholds are far below.
  const rollbackEvidence = Math.exp(Math.min(700, logRollbackEvidence(bets)))
  const passEvidence = Math.exp(Math.min(700, logPassEvidence(bets)))
  return {
    metric,
    canaryPercent: canaryRequests > 0 ? (canaryEvents / canaryRequests) * 100 : null,
    stablePercent: stableRequests > 0 ? (stableEvents / stableRequests) * 100 : null,
    ratio: estimatedRatio(bets),
    ratioInterval: ratioInterval(bets),
    toleratedRatio: tolerated,
    rollbackEvidence,
    rollbackNeeded,
    passEvidence,
    passNeeded,
    blocks: bets.blocks,
    canaryEvents: bets.canaryEvents,
    stableEvents: bets.stableEvents,
    verdict: rollbackEvidence >= rollbackNeeded ? 'Failed' : passEvidence >= passNeeded ? 'Successful' : 'Inconclusive',
  }
}

/** 95 % Clopper–Pearson interval of the canary's event share, mapped to a rate ratio through the average canary request share. */
function ratioInterval(bets: BetState): readonly [number, number] | null {
  const events = bets.canaryEvents + bets.stableEvents
  if (events <= 0 || bets.expectedCanaryEvents <= 0 || bets.expectedCanaryEvents >= events) return null
  const canaryShare = bets.expectedCanaryEvents / events
  // Clumps make events dependent; rounding to whole events keeps the interval defined, not exact.
  const canary = Math.round(bets.canaryEvents)
  const total = Math.max(canary, Math.round(events))
  const low = binomialLowerBound(canary, total, 0.025)
  const high = binomialUpperBound(canary, total, 0.025)
  return [ratioOfShare(low, canaryShare), ratioOfShare(high, canaryShare)]
}

/** Folds per-block window counts through the judge: the programmatic entry for benchmarks and other tools. */
export function judgeBlocks(blocks: readonly WindowMetrics[], policy: JudgePolicy): {readonly evidence: Evidence; readonly judgment: Judgment} {
  let evidence = NO_EVIDENCE
  for (const block of blocks) evidence = addBlock(evidence, countsOf(block.canary), countsOf(block.stable), policy, block.sinceMs, block.untilMs)
  return {evidence, judgment: judgeEvidence(evidence, policy)}
}
