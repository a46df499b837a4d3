/** Builders for rollout core tests: a plan, a rollout at some point of it, and window metrics. */
import {judgePolicyOf} from '../../src/rollout/core/analysis.js'
import {judgeBlocks, type Evidence} from '../../src/rollout/core/evidence.js'
import type {LatencyBucket, VersionMetrics, WindowMetrics} from '../../src/rollout/core/metrics.js'
import {newRollout} from '../../src/rollout/core/decide.js'
import type {AnalysisPolicy, Observation, Plan, RolloutState, Step} from '../../src/rollout/core/types.js'
import {weights, type Weights} from '../../src/rollout/core/weights.js'

export const INTERVAL_MS = 10_000

export function aPolicy(overrides: Partial<AnalysisPolicy> = {}): AnalysisPolicy {
  return {intervalMs: INTERVAL_MS, minRequests: 50, failureLimit: 1, progressDeadlineMs: 60_000, maxFalsePositiveRate: 0.01, successRatePercent: 99, ...overrides}
}

export function aPlan(steps: readonly Step[] = [setWeight(20), setWeight(50), setWeight(100)], policy: Partial<AnalysisPolicy> = {}): Plan {
  return {steps, totalWeight: 100, analysis: aPolicy(policy)}
}

export function setWeight(weight: number): Step {
  return {kind: 'setWeight', weight}
}

export function pause(durationMs?: number): Step {
  return durationMs === undefined ? {kind: 'pause'} : {kind: 'pause', durationMs}
}

/** A rollout at `stepIndex` in phase Progressing (or the given phase), window starting at `windowStartMs`. */
export function aRollout(overrides: Partial<RolloutState> = {}): RolloutState {
  const base = newRollout({name: 'my-app', stableImage: 'acme/my-app:v1', canaryImage: 'acme/my-app:v2', nowMs: 0})
  return {...base, phase: 'Progressing', deployedAtMs: 0, ...overrides}
}

/** Cumulative latency buckets for `requests` requests of which `slow` took longer than 0.5 s. */
export function latency(requests: number, slow = 0): LatencyBucket[] {
  return [
    {leSeconds: 0.1, count: requests - slow},
    {leSeconds: 0.5, count: requests - slow},
    {leSeconds: 1, count: requests},
    {leSeconds: Number.POSITIVE_INFINITY, count: requests},
  ]
}

export function version(requests: number, errors = 0, slow = 0): VersionMetrics {
  return {requests, errors, latency: latency(requests, slow)}
}

export function windowOf(canary: VersionMetrics, stable: VersionMetrics, sinceMs = 0, untilMs = INTERVAL_MS): WindowMetrics {
  return {sinceMs, untilMs, canary, stable}
}

/** An observation of a ready canary at the given weight. */
export function observe(nowMs: number, canaryWeight: number, metrics?: WindowMetrics, extra: Partial<Observation> = {}): Observation {
  const w: Weights = weights(canaryWeight, 100)
  return {nowMs, weights: w, canary: {ready: true, readyReplicas: 1, replicas: 1}, ...(metrics === undefined ? {} : {metrics}), ...extra}
}

export const healthy = (requests = 1000): WindowMetrics => windowOf(version(requests / 5, 1), version(requests, 5))
export const failing = (requests = 1000): WindowMetrics => windowOf(version(requests / 5, requests / 20), version(requests, 5))

/** Per-block counts for the judge: `blocks` one-second blocks of `canaryRequests`/`stableRequests` requests with the given errors per block. */
export function blocksOf(blocks: number, canary: {requests: number; errors: number}, stable: {requests: number; errors: number}, startMs = 0): WindowMetrics[] {
  return Array.from({length: blocks}, (_, i) => windowOf(version(canary.requests, canary.errors), version(stable.requests, stable.errors), startMs + i * 1000, startMs + (i + 1) * 1000))
}

/** Evidence that a canary as good as stable is within the tolerance (10 minutes at 20 %, no canary errors). */
export function provenHealthy(): Evidence {
  return judgeBlocks(blocksOf(600, {requests: 20, errors: 0}, {requests: 80, errors: 1}), judgePolicyOf(aPolicy())).evidence
}

/**
 * A metric source's answer for a window at 100 requests/s (20 % to the canary), growing with the
 * window as a real source's does: stable errs on 0.5 % of requests, the canary on `canaryErrorRate`.
 */
export function steadyTraffic(canaryErrorRate: number): (window: {sinceMs: number; untilMs: number}) => WindowMetrics {
  return ({sinceMs, untilMs}) => {
    const seconds = Math.max(0, untilMs - sinceMs) / 1000
    const canaryRequests = Math.floor(seconds * 20)
    const stableRequests = Math.floor(seconds * 80)
    return windowOf(version(canaryRequests, Math.floor(canaryRequests * canaryErrorRate)), version(stableRequests, Math.floor(stableRequests * 0.005)), sinceMs, untilMs)
  }
}
