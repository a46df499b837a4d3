/**
 * MetricSource on the bundled proxy's per-second counters: `GET /api/services/{service}/stats?since=`
 * returns exact request, error and latency-bucket counts per version (track) for the window.
 */
import {UnreachableError, messageOf} from '../errors.js'
import {httpCall} from './http-json.js'
import {EMPTY_VERSION_METRICS, type VersionMetrics, type WindowMetrics} from '../rollout/core/metrics.js'
import type {MetricSource} from '../rollout/ports.js'
import type {ServiceStats, VersionWindowStats} from '../proxy/traffic-stats.js'
import type {ProxyAdminEndpoint} from './admin-token.js'

/** Per-version window counts from the bundled proxy's admin API. */
export class ProxyMetricSource implements MetricSource {
  readonly kind = 'proxy'

  constructor(
    private readonly service: string,
    private readonly admin: ProxyAdminEndpoint,
  ) {}

  async read(window: {readonly sinceMs: number; readonly untilMs: number}, signal: AbortSignal): Promise<WindowMetrics> {
    const url = `${this.admin.url}/api/services/${encodeURIComponent(this.service)}/stats?since=${Math.floor(window.sinceMs)}`
    let body: ServiceStats
    try {
      const reply = await httpCall('GET', url, {token: this.admin.token, timeoutMs: 5000, signal})
      if (reply.status !== 200) throw new Error(`${reply.status} ${reply.text}`)
      body = JSON.parse(reply.text) as ServiceStats
    } catch (error) {
      throw new UnreachableError(`proxy admin ${this.admin.url}: reading stats of ${this.service} failed: ${messageOf(error)}`, {cause: error})
    }
    return {sinceMs: body.sinceMs, untilMs: body.untilMs, stable: toMetrics(body.versions.stable), canary: toMetrics(body.versions.canary)}
  }
}

function toMetrics(stats: VersionWindowStats | undefined): VersionMetrics {
  if (stats === undefined) return EMPTY_VERSION_METRICS
  return {
    requests: stats.requests,
    errors: stats.errors,
    latency: stats.latency.buckets.map((b) => ({leSeconds: b.le === '+Inf' ? Number.POSITIVE_INFINITY : b.le, count: b.count})),
  }
}
