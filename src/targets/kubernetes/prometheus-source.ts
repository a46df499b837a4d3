/**
 * Metrics from Prometheus (`spec.analysis.prometheus.url`, HTTP API `/api/v1/query`) for releases
 * on a cluster. The built-in queries are each router's own (`builtInQueries` in
 * src/routers/<kind>/index.ts):
 *
 * - ingress-nginx: `nginx_ingress_controller_requests` and
 *   `nginx_ingress_controller_response_duration_seconds_bucket` of the main Ingress; the `canary`
 *   label is non-empty for requests the canary upstream served (internal/ingress/metric/collectors/socket.go).
 * - Traefik: `traefik_service_requests_total` and `traefik_service_request_duration_seconds_bucket`
 *   whose `service` is the track's Kubernetes Service (`<ns>-<svc>-<port>@kubernetes…`).
 * - the bundled proxy: `canary_proxy_requests_total` and `canary_proxy_request_duration_seconds_bucket`.
 *
 * Latency is read as the window's histogram (`sum by (le) (increase(…_bucket[w]))`), from which the
 * judge takes the 99th percentile the way `histogram_quantile` does; never a mean of durations
 * (Flagger's nginx latency query divides `_sum` by `_count`, which hides the tail).
 * User PromQL may replace any query; placeholders: {{namespace}} {{name}} {{track}} {{service}}
 * {{ingress}} {{interval}}.
 */
import {ConfigError, UnreachableError} from '../../errors.js'
import {names} from '../../render/names.js'
import type {Release} from '../../release/release.js'
import type {LatencyBucket, VersionMetrics, WindowMetrics} from '../../rollout/core/metrics.js'
import type {MetricSource, Track} from '../../rollout/ports.js'
import {ROUTERS, routerDefinition, routerOf} from '../../routers/index.js'
import type {QueryContext, TrackQueries} from '../../routers/router-definition.js'

/** Fills `{{placeholder}}`s; an unknown placeholder is a ConfigError naming it. */
export function fillQuery(template: string, context: QueryContext, field: string): string {
  return template.replace(/\{\{\s*([a-zA-Z]+)\s*\}\}/g, (_, key: string) => {
    const value = (context as unknown as Record<string, unknown>)[key]
    if (value === undefined) {
      throw new ConfigError(`spec.analysis.prometheus.queries.${field}: unknown placeholder {{${key}}}`, [{path: `spec.analysis.prometheus.queries.${field}`, message: `unknown placeholder {{${key}}}`, suggestion: 'Use {{namespace}}, {{name}}, {{track}}, {{service}}, {{ingress}} or {{interval}}.'}])
    }
    return String(value)
  })
}

interface VectorSample {
  readonly metric: Record<string, string>
  readonly value: [number, string]
}

/** Reads per-track metrics for a window from Prometheus. */
export class PrometheusSource implements MetricSource {
  readonly kind = 'prometheus'
  private readonly url: string
  /** The router's built-in queries; undefined for a router without them (the spec gives its own). */
  private readonly builtIn: ((context: QueryContext) => TrackQueries) | undefined

  constructor(private readonly release: Release) {
    const prometheus = release.analysis.prometheus
    if (prometheus === undefined) throw new ConfigError('spec.analysis.prometheus.url is required to judge this router on Kubernetes', [{path: 'spec.analysis.prometheus.url', message: 'required for routers other than proxy', suggestion: 'e.g. http://prometheus-server.monitoring:9090'}])
    this.url = prometheus.url.replace(/\/$/, '')
    const kind = routerOf(release)
    this.builtIn = routerDefinition(release).builtInQueries
    const user = prometheus.queries
    if (this.builtIn === undefined && (user.requests === undefined || user.successRate === undefined)) {
      // Traefik 1.x counts per frontend backend, not per Service; Gateway API metrics are implementation-specific.
      const missing = (['requests', 'successRate'] as const).filter((q) => user[q] === undefined)
      throw new ConfigError(`router ${kind}: canary has no built-in Prometheus queries for it; spec.analysis.prometheus.queries must give ${missing.join(' and ')}`, missing.map((q) => ({path: `spec.analysis.prometheus.queries.${q}`, message: 'required for this router', suggestion: 'PromQL with {{namespace}}, {{service}}, {{track}} and {{interval}} placeholders; see docs/kubernetes.md'})))
    }
  }

  /** The queries for a track and window, user overrides applied. */
  queries(track: Track, intervalSeconds: number): TrackQueries & {readonly requestsOverride: boolean; readonly successRate?: string; readonly userLatencyP99?: string} {
    const n = names(this.release)
    const context: QueryContext = {namespace: this.release.namespace, name: this.release.name, track, service: track === 'stable' ? n.stable : n.canary, ingress: n.apex, port: this.release.port, interval: `${intervalSeconds}s`}
    // Without built-ins (checked in the constructor) the user gave requests and successRate, and errors
    // come from the latter; the proxy's built-ins then only fill fields that are never queried.
    const builtIn = (this.builtIn ?? ROUTERS.proxy.builtInQueries)(context)
    const user = this.release.analysis.prometheus?.queries ?? {}
    return {
      ...builtIn,
      requests: user.requests === undefined ? builtIn.requests : fillQuery(user.requests, context, 'requests'),
      requestsOverride: user.requests !== undefined,
      ...(user.successRate === undefined ? {} : {successRate: fillQuery(user.successRate, context, 'successRate')}),
      ...(user.latencyP99 === undefined ? {} : {userLatencyP99: fillQuery(user.latencyP99, context, 'latencyP99')}),
    }
  }

  async read(window: {readonly sinceMs: number; readonly untilMs: number}, signal: AbortSignal): Promise<WindowMetrics> {
    const intervalSeconds = Math.max(1, Math.ceil((window.untilMs - window.sinceMs) / 1000))
    const [stable, canary] = await Promise.all((['stable', 'canary'] as const).map((track) => this.readTrack(track, intervalSeconds, window.untilMs, signal)))
    return {sinceMs: window.sinceMs, untilMs: window.untilMs, stable: stable as VersionMetrics, canary: canary as VersionMetrics}
  }

  private async readTrack(track: Track, intervalSeconds: number, atMs: number, signal: AbortSignal): Promise<VersionMetrics> {
    const q = this.queries(track, intervalSeconds)
    const requests = Math.round(scalar(await this.query(q.requests, atMs, signal)))
    const errors = q.successRate === undefined
      ? Math.round(scalar(await this.query(q.errors, atMs, signal)))
      : Math.round(requests * (1 - asRatio(scalar(await this.query(q.successRate, atMs, signal)))))
    let latency: LatencyBucket[]
    if (q.userLatencyP99 === undefined && this.builtIn === undefined) {
      latency = []
    } else if (q.userLatencyP99 === undefined) {
      latency = (await this.query(q.latencyBuckets, atMs, signal))
        .map((s) => ({leSeconds: s.metric.le === '+Inf' ? Infinity : Number(s.metric.le), count: Math.round(Number(s.value[1]))}))
        .filter((b) => !Number.isNaN(b.leSeconds))
        .sort((a, b) => a.leSeconds - b.leSeconds)
    } else {
      // A user p99 is one number: represent it as the histogram it implies (99 % at or below it).
      const p99 = scalar(await this.query(q.userLatencyP99, atMs, signal))
      latency = requests === 0 || Number.isNaN(p99) ? [] : [{leSeconds: p99, count: Math.floor(requests * 0.99)}, {leSeconds: Infinity, count: requests}]
    }
    return {requests, errors: Math.min(errors, requests), latency}
  }

  private async query(promql: string, atMs: number, signal: AbortSignal): Promise<VectorSample[]> {
    const url = `${this.url}/api/v1/query?${new URLSearchParams({query: promql, time: (atMs / 1000).toFixed(3)})}`
    let response: {status: number; text: string}
    try {
      response = await httpGet(url, signal)
    } catch (error) {
      if (signal.aborted) throw error
      throw new UnreachableError(`Prometheus ${this.url}: query failed: ${(error as {code?: string}).code ?? (error as Error).message}`, {cause: error, subject: this.url, suggestions: ['Check spec.analysis.prometheus.url is reachable from where canary runs.']})
    }
    let body: {status?: string; error?: string; errorType?: string; data?: {resultType?: string; result?: unknown}} | undefined
    try {
      body = JSON.parse(response.text) as typeof body
    } catch {
      body = undefined
    }
    if (response.status < 200 || response.status > 299 || body?.status !== 'success') {
      const message = body?.error ?? `HTTP ${response.status}`
      if (response.status === 400 || response.status === 422) {
        throw new ConfigError(`Prometheus ${this.url}: query rejected: ${message}`, [{path: 'spec.analysis.prometheus.queries', message: `${message} in: ${promql}`}], {subject: this.url})
      }
      throw new UnreachableError(`Prometheus ${this.url}: query failed: ${message}`, {subject: this.url})
    }
    const data = body.data
    if (data?.resultType === 'scalar') return [{metric: {}, value: data.result as [number, string]}]
    return (data?.result as VectorSample[] | undefined) ?? []
  }
}

/**
 * GET with node:http(s), whole answer as text. Not fetch: loading Node's bundled undici costs
 * ~30 ms of every `canary step` (bench/cluster.ts), more than the queries themselves.
 */
async function httpGet(url: string, signal: AbortSignal): Promise<{status: number; text: string}> {
  const target = new URL(url)
  const {get} = target.protocol === 'https:' ? await import('node:https') : await import('node:http')
  return new Promise((resolve, reject) => {
    const request = get(target, {signal, headers: {accept: 'application/json'}}, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => resolve({status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8')}))
      response.on('error', reject)
    })
    request.on('error', reject)
  })
}

/** The single value of a query; no series (no traffic yet) is 0. */
function scalar(samples: readonly VectorSample[]): number {
  if (samples.length === 0) return 0
  return samples.reduce((sum, s) => sum + Number(s.value[1]), 0)
}

/** A success rate written as a ratio (0.99) or a percentage (99). */
function asRatio(value: number): number {
  if (Number.isNaN(value)) return 1
  return value > 1 ? value / 100 : value
}
