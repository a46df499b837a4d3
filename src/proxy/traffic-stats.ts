/**
 * Request accounting kept in plain counters on the hot path (no label hashing per request):
 * cumulative series for /metrics, and a ring of per-second buckets per service version for
 * `GET /api/services/{service}/stats?since=` (bounded memory: `retentionSeconds` slots).
 * Snapshots are plain JSON so cluster workers can send them to the primary, which sums them.
 */

/** Histogram buckets (seconds) of canary_proxy_request_duration_seconds and of the stats API. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const BUCKET_COUNT = DURATION_BUCKETS_SECONDS.length + 1 // + the +Inf bucket

/** Default stats retention: one hour of one-second buckets. */
export const DEFAULT_RETENTION_SECONDS = 3600

const SEP = '\u0000'

// Ring slot layout: requests, 1xx..5xx, duration buckets (non-cumulative), duration sum, client aborts.
const SLOT_REQUESTS = 0
const SLOT_CLASS = 1 // + (class - 1) for 1xx..5xx
const SLOT_BUCKETS = 6
const SLOT_SUM = SLOT_BUCKETS + BUCKET_COUNT
const SLOT_CLIENT_ABORTS = SLOT_SUM + 1
const STRIDE = SLOT_CLIENT_ABORTS + 1

/** Per-second buckets for one service version. */
class SecondRing {
  private readonly stamps: Float64Array
  private readonly data: Float64Array

  constructor(private readonly capacity: number) {
    this.stamps = new Float64Array(capacity).fill(-1)
    this.data = new Float64Array(capacity * STRIDE)
  }

  record(second: number, statusClass: number, bucket: number, durationSeconds: number): void {
    const base = this.slotBase(second)
    const data = this.data
    data[base + SLOT_REQUESTS]! += 1
    if (statusClass >= 1 && statusClass <= 5) data[base + SLOT_CLASS + statusClass - 1]! += 1
    data[base + SLOT_BUCKETS + bucket]! += 1
    data[base + SLOT_SUM]! += durationSeconds
  }

  /** Counts a request the client abandoned: not a request of the version, see TrafficStats.countClientAbort. */
  recordClientAbort(second: number): void {
    this.data[this.slotBase(second) + SLOT_CLIENT_ABORTS]! += 1
  }

  private slotBase(second: number): number {
    const index = second % this.capacity
    const base = index * STRIDE
    if (this.stamps[index] !== second) {
      this.stamps[index] = second
      this.data.fill(0, base, base + STRIDE)
    }
    return base
  }

  /** Sums the buckets of seconds in [fromSecond, toSecond] into `into` (length STRIDE). */
  sum(fromSecond: number, toSecond: number, into: Float64Array): void {
    for (let i = 0; i < this.capacity; i++) {
      const stamp = this.stamps[i]!
      if (stamp < fromSecond || stamp > toSecond) continue
      const base = i * STRIDE
      for (let j = 0; j < STRIDE; j++) into[j]! += this.data[base + j]!
    }
  }
}

/** Cumulative counters of one (route, service, version): status codes and the duration histogram. */
export class RequestSeries {
  readonly codes = new Map<number, number>()
  readonly buckets = new Float64Array(BUCKET_COUNT)
  sum = 0
  count = 0

  constructor(
    readonly route: string,
    readonly service: string,
    readonly version: string,
    readonly ring: SecondRing | undefined,
  ) {}

  /** Counts one finished request. `nowMs` is wall-clock time (Date.now()). */
  record(status: number, durationSeconds: number, nowMs: number): void {
    this.codes.set(status, (this.codes.get(status) ?? 0) + 1)
    const bucket = bucketIndex(durationSeconds)
    this.buckets[bucket]! += 1
    this.sum += durationSeconds
    this.count += 1
    this.ring?.record(Math.floor(nowMs / 1000), (status / 100) | 0, bucket, durationSeconds)
  }
}

function bucketIndex(seconds: number): number {
  const bounds = DURATION_BUCKETS_SECONDS
  for (let i = 0; i < bounds.length; i++) if (seconds <= bounds[i]!) return i
  return bounds.length
}

/** Counters of mirrored requests per service version. */
export interface MirrorCounts {
  requests: number
  failures: number
  skipped: number
}

/** Everything /metrics reports that is counted (not state); plain JSON, summable across workers. */
export interface CounterSnapshot {
  /** key route\0service\0version\0code → count */
  readonly requests: Record<string, number>
  /** key route\0service\0version → non-cumulative bucket counts, sum, count */
  readonly durations: Record<string, {buckets: number[]; sum: number; count: number}>
  /** key service\0version */
  readonly mirror: Record<string, MirrorCounts>
  /** key service\0version → requests served by other versions because this one had no healthy server */
  readonly redistributed: Record<string, number>
  readonly retries: number
  /** key reason (bad_request, header_too_large, timeout, body_timeout, send_timeout) */
  readonly clientErrors: Record<string, number>
  /** key upstream origin\0reason (queue_full, queue_timeout) → requests answered 503 by the connection cap */
  readonly upstreamRefusals: Record<string, number>
  /** Access-log lines dropped because the log could not keep up (a full buffer or a failed write). */
  readonly accessLogDropped: number
  /** Gauges per upstream origin: requests holding a connection and requests waiting for one. */
  readonly upstreams: Record<string, {active: number; queued: number}>
  /** Gauge: bytes of request bodies and response data held in memory for slow clients. */
  readonly bufferedBytes: number
}

/**
 * `GET /api/services/{service}/stats`: the stats API's wire format, written by the proxy's admin API
 * and read by the local MetricSource (src/local/proxy-metrics.ts).
 */
export interface ServiceStats {
  service: string
  /** Start of the window actually counted (whole seconds; later than asked when clamped). */
  sinceMs: number
  untilMs: number
  /** True when `since` was older than the retention and the window was shortened. */
  clamped: boolean
  retentionSeconds: number
  versions: Record<string, VersionWindowStats>
}

/** Per-version result of the stats API (the engine's input). */
export interface VersionWindowStats {
  requests: number
  errors: number
  /** Requests the client abandoned before the answer was complete; not in `requests`, `codes` or `latency`. */
  clientAborts: number
  codes: {'1xx'?: number; '2xx': number; '3xx': number; '4xx': number; '5xx': number}
  latency: {buckets: {le: number | '+Inf'; count: number}[]; sum: number; count: number}
}

/** Accounting for one process. Series are created on first use and survive config reloads. */
export class TrafficStats {
  private readonly series = new Map<string, RequestSeries>()
  /**
   * The same series by route, then service, then version. The hot path looks up config strings
   * (their hashes are cached) instead of building and hashing a joined key per request.
   */
  private readonly seriesByRoute = new Map<string, Map<string, Map<string, RequestSeries>>>()
  private readonly rings = new Map<string, SecondRing>()
  private readonly mirrorCounts = new Map<string, MirrorCounts>()
  private readonly redistributedCounts = new Map<string, number>()
  private readonly clientErrorCounts = new Map<string, number>()
  private readonly upstreamRefusalCounts = new Map<string, number>()
  retries = 0
  accessLogDropped = 0

  constructor(readonly retentionSeconds: number = DEFAULT_RETENTION_SECONDS) {}

  /** The series for (route, service, version); "" for unknown parts (e.g. 404 with no route). */
  seriesFor(route: string, service: string, version: string): RequestSeries {
    return this.seriesByRoute.get(route)?.get(service)?.get(version) ?? this.addSeries(route, service, version)
  }

  private addSeries(route: string, service: string, version: string): RequestSeries {
    const series = new RequestSeries(route, service, version, version === '' ? undefined : this.ringFor(service, version))
    this.series.set(route + SEP + service + SEP + version, series)
    let byService = this.seriesByRoute.get(route)
    if (byService === undefined) this.seriesByRoute.set(route, (byService = new Map()))
    let byVersion = byService.get(service)
    if (byVersion === undefined) byService.set(service, (byVersion = new Map()))
    byVersion.set(version, series)
    return series
  }

  mirrorFor(service: string, version: string): MirrorCounts {
    const key = service + SEP + version
    let counts = this.mirrorCounts.get(key)
    if (counts === undefined) {
      counts = {requests: 0, failures: 0, skipped: 0}
      this.mirrorCounts.set(key, counts)
    }
    return counts
  }

  countRedistributed(service: string, version: string): void {
    const key = service + SEP + version
    this.redistributedCounts.set(key, (this.redistributedCounts.get(key) ?? 0) + 1)
  }

  /**
   * A request to `version` that the client abandoned (closed the connection mid-request or
   * mid-response). Its outcome and duration are the client's doing, so it is not counted as a
   * request of the version (the judge's error rate and latency stay clean); the stats API reports
   * it as `clientAborts`. The caller records its 499 under version "".
   */
  countClientAbort(service: string, version: string, nowMs: number): void {
    this.ringFor(service, version).recordClientAbort(Math.floor(nowMs / 1000))
  }

  countClientError(reason: string): void {
    this.clientErrorCounts.set(reason, (this.clientErrorCounts.get(reason) ?? 0) + 1)
  }

  countUpstreamRefusal(origin: string, reason: string): void {
    const key = origin + SEP + reason
    this.upstreamRefusalCounts.set(key, (this.upstreamRefusalCounts.get(key) ?? 0) + 1)
  }

  private ringFor(service: string, version: string): SecondRing {
    const key = service + SEP + version
    let ring = this.rings.get(key)
    if (ring === undefined) {
      ring = new SecondRing(this.retentionSeconds)
      this.rings.set(key, ring)
    }
    return ring
  }

  snapshot(): CounterSnapshot {
    const requests: Record<string, number> = {}
    const durations: CounterSnapshot['durations'] = {}
    for (const [key, series] of this.series) {
      for (const [code, count] of series.codes) requests[key + SEP + String(code)] = count
      durations[key] = {buckets: [...series.buckets], sum: series.sum, count: series.count}
    }
    return {
      requests,
      durations,
      mirror: Object.fromEntries([...this.mirrorCounts].map(([k, v]) => [k, {...v}])),
      redistributed: Object.fromEntries(this.redistributedCounts),
      retries: this.retries,
      clientErrors: Object.fromEntries(this.clientErrorCounts),
      upstreamRefusals: Object.fromEntries(this.upstreamRefusalCounts),
      accessLogDropped: this.accessLogDropped,
      upstreams: {},
      bufferedBytes: 0,
    }
  }

  /** Raw window sums per version since `sinceMs` (whole seconds); summable across workers. */
  window(service: string, versions: readonly string[], sinceMs: number, untilMs: number): Record<string, number[]> {
    const result: Record<string, number[]> = {}
    for (const version of versions) {
      const into = new Float64Array(STRIDE)
      this.rings.get(service + SEP + version)?.sum(Math.floor(sinceMs / 1000), Math.floor(untilMs / 1000), into)
      result[version] = [...into]
    }
    return result
  }
}

/** Turns summed raw window arrays into the stats API's per-version objects. */
export function windowStats(raw: Readonly<Record<string, readonly number[]>>): Record<string, VersionWindowStats> {
  const result: Record<string, VersionWindowStats> = {}
  for (const [version, data] of Object.entries(raw)) {
    const at = (i: number) => data[i] ?? 0
    let cumulative = 0
    const buckets: VersionWindowStats['latency']['buckets'] = []
    for (let i = 0; i < BUCKET_COUNT; i++) {
      cumulative += at(SLOT_BUCKETS + i)
      buckets.push({le: DURATION_BUCKETS_SECONDS[i] ?? '+Inf', count: cumulative})
    }
    const codes: VersionWindowStats['codes'] = {'2xx': at(SLOT_CLASS + 1), '3xx': at(SLOT_CLASS + 2), '4xx': at(SLOT_CLASS + 3), '5xx': at(SLOT_CLASS + 4)}
    if (at(SLOT_CLASS) > 0) codes['1xx'] = at(SLOT_CLASS)
    result[version] = {
      requests: at(SLOT_REQUESTS),
      errors: at(SLOT_CLASS + 4),
      clientAborts: at(SLOT_CLIENT_ABORTS),
      codes,
      latency: {buckets, sum: at(SLOT_SUM), count: at(SLOT_REQUESTS)},
    }
  }
  return result
}

/** Element-wise sum of window arrays from several workers. */
export function sumWindows(parts: readonly Readonly<Record<string, readonly number[]>>[]): Record<string, number[]> {
  const result: Record<string, number[]> = {}
  for (const part of parts) {
    for (const [version, data] of Object.entries(part)) {
      const into = (result[version] ??= new Array<number>(data.length).fill(0))
      data.forEach((value, i) => (into[i] = (into[i] ?? 0) + value))
    }
  }
  return result
}

/** Sums counter snapshots from several workers. */
export function sumCounters(parts: readonly CounterSnapshot[]): CounterSnapshot {
  const requests: Record<string, number> = {}
  const durations: CounterSnapshot['durations'] = {}
  const mirror: CounterSnapshot['mirror'] = {}
  const redistributed: Record<string, number> = {}
  const clientErrors: Record<string, number> = {}
  const upstreamRefusals: Record<string, number> = {}
  const upstreams: Record<string, {active: number; queued: number}> = {}
  let retries = 0
  let accessLogDropped = 0
  let bufferedBytes = 0
  const add = (into: Record<string, number>, from: Readonly<Record<string, number>>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
  }
  for (const part of parts) {
    add(requests, part.requests)
    add(redistributed, part.redistributed)
    add(clientErrors, part.clientErrors)
    add(upstreamRefusals, part.upstreamRefusals)
    retries += part.retries
    accessLogDropped += part.accessLogDropped
    bufferedBytes += part.bufferedBytes
    for (const [origin, gauges] of Object.entries(part.upstreams)) {
      const into = (upstreams[origin] ??= {active: 0, queued: 0})
      into.active += gauges.active
      into.queued += gauges.queued
    }
    for (const [k, v] of Object.entries(part.durations)) {
      const into = (durations[k] ??= {buckets: new Array<number>(v.buckets.length).fill(0), sum: 0, count: 0})
      v.buckets.forEach((n, i) => (into.buckets[i] = (into.buckets[i] ?? 0) + n))
      into.sum += v.sum
      into.count += v.count
    }
    for (const [k, v] of Object.entries(part.mirror)) {
      const into = (mirror[k] ??= {requests: 0, failures: 0, skipped: 0})
      into.requests += v.requests
      into.failures += v.failures
      into.skipped += v.skipped
    }
  }
  return {requests, durations, mirror, redistributed, retries, clientErrors, upstreamRefusals, accessLogDropped, upstreams, bufferedBytes}
}

/** Splits a snapshot key back into its label values. */
export function splitKey(key: string): string[] {
  return key.split(SEP)
}
