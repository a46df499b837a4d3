/**
 * Prometheus metrics on an injected prom-client Registry (never the global one). Requests are
 * counted in plain counters on the hot path (traffic-stats.ts); each metric here renders a
 * snapshot taken once per scrape, which also lets the cluster primary render summed worker data.
 * Labels are bounded: route, service and version names and server URLs come from the config, codes
 * are HTTP status codes; never a raw path.
 */
import {Registry} from 'prom-client'

import type {ServiceState} from './state.js'
import {DURATION_BUCKETS_SECONDS, splitKey, type CounterSnapshot} from './traffic-stats.js'

/** What one scrape renders. */
export interface MetricsView {
  readonly counters: CounterSnapshot
  readonly services: Readonly<Record<string, ServiceState>>
  readonly reloads: {readonly success: number; readonly failure: number}
  readonly generation: number
}

type Labels = Record<string, string | number>
interface Sample {
  value: number
  labels: Labels
  metricName?: string
}

/** A metric in prom-client's registry protocol whose samples come from the current view. */
class ViewMetric {
  readonly aggregator = 'sum'
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly samples: (view: MetricsView) => Sample[],
    private readonly source: () => MetricsView,
  ) {}

  get(): {name: string; help: string; type: string; aggregator: string; values: Sample[]} {
    return {name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples(this.source())}
  }

  reset(): void {}
}

/** The proxy's metrics; call `render(view)` per scrape. */
export class ProxyMetrics {
  readonly registry: Registry
  private view: MetricsView = {counters: {requests: {}, durations: {}, mirror: {}, redistributed: {}, retries: 0, clientErrors: {}, upstreamRefusals: {}, accessLogDropped: 0, upstreams: {}, bufferedBytes: 0}, services: {}, reloads: {success: 0, failure: 0}, generation: 0}

  constructor(registry: Registry = new Registry()) {
    this.registry = registry
    const source = () => this.view
    const add = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', samples: (view: MetricsView) => Sample[]) =>
      registry.registerMetric(new ViewMetric(name, help, type, samples, source) as never)

    add('canary_proxy_requests_total', 'Requests answered, by route, service, version and status code.', 'counter', (v) =>
      Object.entries(v.counters.requests).map(([key, value]) => {
        const [route = '', service = '', version = '', code = ''] = splitKey(key)
        return {value, labels: {route, service, version, code}}
      }),
    )
    add('canary_proxy_request_duration_seconds', 'Time from request received to response finished, by route, service and version.', 'histogram', (v) => {
      const samples: Sample[] = []
      for (const [key, h] of Object.entries(v.counters.durations)) {
        const [route = '', service = '', version = ''] = splitKey(key)
        let cumulative = 0
        h.buckets.forEach((count, i) => {
          cumulative += count
          const le = DURATION_BUCKETS_SECONDS[i]
          samples.push({metricName: 'canary_proxy_request_duration_seconds_bucket', value: cumulative, labels: {route, service, version, le: le === undefined ? '+Inf' : le}})
        })
        samples.push({metricName: 'canary_proxy_request_duration_seconds_sum', value: h.sum, labels: {route, service, version}})
        samples.push({metricName: 'canary_proxy_request_duration_seconds_count', value: h.count, labels: {route, service, version}})
      }
      return samples
    })
    for (const [field, help] of [
      ['requests', 'Requests copied to a mirror version.'],
      ['failures', 'Mirrored requests that failed (no server, connect error, timeout); the client never sees these.'],
      ['skipped', 'Requests sampled for mirroring but not copied because the body was chunked or above maxBodyBytes.'],
    ] as const) {
      add(`canary_proxy_mirror_${field}_total`, help, 'counter', (v) =>
        Object.entries(v.counters.mirror).map(([key, counts]) => {
          const [service = '', version = ''] = splitKey(key)
          return {value: counts[field], labels: {service, version}}
        }),
      )
    }
    add('canary_proxy_redistributed_requests_total', 'Picks that skipped a version with no healthy server, so another version served the request.', 'counter', (v) =>
      Object.entries(v.counters.redistributed).map(([key, value]) => {
        const [service = '', version = ''] = splitKey(key)
        return {value, labels: {service, version}}
      }),
    )
    add('canary_proxy_retries_total', 'Requests retried on another server after a connection failure.', 'counter', (v) => [{value: v.counters.retries, labels: {}}])
    add('canary_proxy_client_errors_total', 'Malformed or too slow client requests the proxy ended itself (400, 408, 431, slow body or slow reader), by reason.', 'counter', (v) =>
      Object.entries(v.counters.clientErrors).map(([reason, value]) => ({value, labels: {reason}})),
    )
    add('canary_proxy_upstream_rejected_total', 'Requests answered 503 because every connection to the upstream stayed busy (limits.upstreamConnections), by reason: queue_full or queue_timeout.', 'counter', (v) =>
      Object.entries(v.counters.upstreamRefusals).map(([key, value]) => {
        const [upstream = '', reason = ''] = splitKey(key)
        return {value, labels: {upstream, reason}}
      }),
    )
    add('canary_proxy_upstream_active_requests', 'Requests holding a connection to the upstream now (at most limits.upstreamConnections per process).', 'gauge', (v) =>
      Object.entries(v.counters.upstreams).map(([upstream, g]) => ({value: g.active, labels: {upstream}})),
    )
    add('canary_proxy_upstream_queued_requests', 'Requests waiting for a connection to the upstream now (at most limits.upstreamQueue per process).', 'gauge', (v) =>
      Object.entries(v.counters.upstreams).map(([upstream, g]) => ({value: g.queued, labels: {upstream}})),
    )
    add('canary_proxy_buffered_bytes', 'Request bodies and response data held in memory for slow clients (at most limits.bufferTotalBytes per process).', 'gauge', (v) => [{value: v.counters.bufferedBytes, labels: {}}])
    add('canary_proxy_access_log_dropped_total', 'Access-log lines dropped because the log destination did not keep up (accessLog.maxBufferBytes full, or a write failed).', 'counter', (v) => [{value: v.counters.accessLogDropped, labels: {}}])
    add('canary_proxy_config_reloads_total', 'Config reloads by result (success or failure; a failed reload keeps the old config).', 'counter', (v) => [
      {value: v.reloads.success, labels: {result: 'success'}},
      {value: v.reloads.failure, labels: {result: 'failure'}},
    ])
    add('canary_proxy_config_generation', 'Generation of the config in use; starts at 1 and increases with each successful reload.', 'gauge', (v) => [{value: v.generation, labels: {}}])
    add('canary_proxy_weight', 'Configured weight of a version (relative to the service total).', 'gauge', (v) => perVersion(v, (s, ver) => ({value: ver.weight, labels: {service: s, version: ver.name}})))
    add('canary_proxy_service_total_weight', 'Sum of the weights of a service (weights are relative to it).', 'gauge', (v) => Object.entries(v.services).map(([service, s]) => ({value: s.total, labels: {service}})))
    add('canary_proxy_effective_weight', 'Weight the balancer uses: 0 while a version has no healthy server.', 'gauge', (v) => perVersion(v, (s, ver) => ({value: ver.effectiveWeight, labels: {service: s, version: ver.name}})))
    add('canary_proxy_version_redistributed', '1 while a version with weight > 0 has no healthy server and its share is redistributed to the other versions.', 'gauge', (v) =>
      perVersion(v, (s, ver) => ({value: ver.weight > 0 && !ver.healthy ? 1 : 0, labels: {service: s, version: ver.name}})),
    )
    add('canary_proxy_server_healthy', '1 if an upstream server is healthy (passive and active checks), else 0.', 'gauge', (v) => {
      const samples: Sample[] = []
      for (const [service, s] of Object.entries(v.services)) for (const ver of s.versions) for (const server of ver.servers) samples.push({value: server.healthy ? 1 : 0, labels: {service, version: ver.name, server: server.url}})
      return samples
    })
  }

  /** Renders the Prometheus text for one view. */
  async render(view: MetricsView): Promise<string> {
    this.view = view
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}

function perVersion(view: MetricsView, sample: (service: string, version: ServiceState['versions'][number]) => Sample): Sample[] {
  const samples: Sample[] = []
  for (const [service, s] of Object.entries(view.services)) for (const version of s.versions) samples.push(sample(service, version))
  return samples
}
