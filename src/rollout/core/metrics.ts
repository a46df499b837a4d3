/**
 * What a MetricSource reports for one window, per version. Counts are exact request counts (the
 * bundled proxy counts every request), so the judge can use per-request statistics instead of
 * time-series points.
 */

/** One cumulative histogram bucket: `count` requests took at most `leSeconds`. */
export interface LatencyBucket {
  readonly leSeconds: number
  readonly count: number
}

export interface VersionMetrics {
  /** Requests completed in the window. */
  readonly requests: number
  /** Responses with a 5xx status (and upstream failures the proxy answered with 5xx). */
  readonly errors: number
  /** Cumulative latency buckets, ascending `leSeconds`, last one `Infinity` (= requests). */
  readonly latency: readonly LatencyBucket[]
}

export interface WindowMetrics {
  readonly sinceMs: number
  readonly untilMs: number
  readonly stable: VersionMetrics
  readonly canary: VersionMetrics
}

export const EMPTY_VERSION_METRICS: VersionMetrics = {requests: 0, errors: 0, latency: []}
