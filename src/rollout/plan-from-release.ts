/** The edge between the release spec (#2) and the pure core: a Release becomes a Plan. */
import type {Release} from '../release/release.js'
import type {Plan} from './core/types.js'

/** The plan the engine follows for `release`. */
export function planFromRelease(release: Release): Plan {
  const a = release.analysis
  return {
    steps: release.steps,
    totalWeight: release.totalWeight,
    analysis: {
      intervalMs: a.intervalMs,
      minRequests: a.minRequests,
      failureLimit: a.failureLimit,
      progressDeadlineMs: release.local?.readyTimeoutMs ?? a.progressDeadlineMs,
      maxFalsePositiveRate: a.maxFalsePositiveRate,
      maxFalsePassRate: a.maxFalsePassRate,
      errorTolerance: a.errorTolerance,
      latencyTolerance: a.latencyTolerance,
      onInconclusive: a.onInconclusive,
      ...(a.deadlineRequests === undefined ? {} : {deadlineRequests: a.deadlineRequests}),
      ...(a.successRatePercent === undefined ? {} : {successRatePercent: a.successRatePercent}),
      ...(a.latencyP99Ms === undefined ? {} : {latencyP99Ms: a.latencyP99Ms}),
      ...(a.deadlineMs === undefined ? {} : {deadlineMs: a.deadlineMs}),
    },
  }
}
