/**
 * Metrics of the bundled proxy running in the cluster, scraped from each proxy pod's `/metrics`
 * through the API server's pod proxy (`/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics`),
 * so a CI runner with only kubeconfig access can read them. Counters are summed across replicas.
 *
 * Counters are cumulative, so a window is "now minus the last scrape at or before the window
 * start", per pod (a pod that restarted counts from zero, like PromQL's `increase`). Scrapes are
 * kept in memory: a process's first window starts at its first scrape.
 */
import type {KubeClient} from '../../kube/client.js'
import {leSeconds, parsePrometheusText} from './prometheus-text.js'
import {names} from '../../render/names.js'
import {PROXY_POD_LISTEN} from './objects.js'
import type {Release} from '../../release/release.js'
import {UnreachableError} from '../../errors.js'
import type {LatencyBucket, VersionMetrics, WindowMetrics} from '../../rollout/core/metrics.js'
import type {MetricSource, Track} from '../../rollout/ports.js'

/** Cumulative counters of one pod for one track. */
interface TrackCounters {
  requests: number
  errors: number
  /** le (seconds) → cumulative count. */
  buckets: Map<number, number>
}

type PodCounters = Record<Track, TrackCounters>

interface Scrape {
  readonly atMs: number
  readonly pods: ReadonlyMap<string, PodCounters>
}

const REQUESTS = 'canary_proxy_requests_total'
const DURATION_BUCKET = 'canary_proxy_request_duration_seconds_bucket'

function emptyCounters(): PodCounters {
  return {stable: {requests: 0, errors: 0, buckets: new Map()}, canary: {requests: 0, errors: 0, buckets: new Map()}}
}

/** Sums one pod's exposition into per-track counters for `service`. */
export function countersFromExposition(text: string, service: string): PodCounters {
  const counters = emptyCounters()
  for (const sample of parsePrometheusText(text)) {
    if (sample.labels.service !== service) continue
    const track = sample.labels.version
    if (track !== 'stable' && track !== 'canary') continue
    const c = counters[track]
    if (sample.name === REQUESTS) {
      c.requests += sample.value
      if ((sample.labels.code ?? '').startsWith('5')) c.errors += sample.value
    } else if (sample.name === DURATION_BUCKET) {
      const le = leSeconds(sample.labels.le)
      c.buckets.set(le, (c.buckets.get(le) ?? 0) + sample.value)
    }
  }
  return counters
}

/** now − base, counter by counter; a counter that went down (pod restart) counts from zero. */
function delta(now: TrackCounters, base: TrackCounters | undefined): TrackCounters {
  const reset = base !== undefined && now.requests < base.requests
  const b = reset || base === undefined ? emptyCounters().stable : base
  const buckets = new Map<number, number>()
  for (const [le, count] of now.buckets) buckets.set(le, Math.max(0, count - (b.buckets.get(le) ?? 0)))
  return {requests: Math.max(0, now.requests - b.requests), errors: Math.max(0, now.errors - b.errors), buckets}
}

function toVersionMetrics(counters: readonly TrackCounters[]): VersionMetrics {
  const sum = {requests: 0, errors: 0, buckets: new Map<number, number>()}
  for (const c of counters) {
    sum.requests += c.requests
    sum.errors += c.errors
    for (const [le, count] of c.buckets) sum.buckets.set(le, (sum.buckets.get(le) ?? 0) + count)
  }
  const latency: LatencyBucket[] = [...sum.buckets].sort(([a], [b]) => a - b).map(([le, count]) => ({leSeconds: le, count}))
  return {requests: sum.requests, errors: sum.errors, latency}
}

/** How many recent window starts pruning respects (a tick reads at most two windows). */
const RECENT_STARTS_KEPT = 4

/** Reads the in-cluster proxy's request counts per track, summed across its pods. */
export class KubeProxyScrapeSource implements MetricSource {
  readonly kind = 'proxy-scrape'
  private scrapes: Scrape[] = []
  /** Starts of the last few windows read: the engine alternates the step's window and the recent one. */
  private readonly starts: number[] = []

  constructor(private readonly client: KubeClient, private readonly release: Release, private readonly metricsPort: number = PROXY_POD_LISTEN.adminPort) {}

  async read(window: {readonly sinceMs: number; readonly untilMs: number}, signal: AbortSignal): Promise<WindowMetrics> {
    const current = await this.scrape(window.untilMs, signal)
    const baseFor = (sinceMs: number) => [...this.scrapes].reverse().find((s) => s.atMs <= sinceMs) ?? this.scrapes[0]
    const base = baseFor(window.sinceMs)
    this.scrapes.push(current)
    this.starts.push(window.sinceMs)
    if (this.starts.length > RECENT_STARTS_KEPT) this.starts.shift()
    // Keep what later windows can still start from: the base of each recently read window (the
    // step's start among them) and everything since the base of the latest-starting one (the
    // recent window slides forward); drop the scrapes in between.
    const bases = new Set(this.starts.map(baseFor))
    const slidingFrom = baseFor(Math.max(...this.starts))?.atMs ?? -Infinity
    this.scrapes = this.scrapes.filter((s) => bases.has(s) || s.atMs >= slidingFrom)
    const perTrack = (track: Track) => [...current.pods].map(([pod, counters]) => delta(counters[track], base === undefined ? counters[track] : base.pods.get(pod)?.[track]))
    return {sinceMs: base?.atMs ?? window.untilMs, untilMs: window.untilMs, stable: toVersionMetrics(perTrack('stable')), canary: toVersionMetrics(perTrack('canary'))}
  }

  private async scrape(atMs: number, signal: AbortSignal): Promise<Scrape> {
    const selector = `app=${names(this.release).proxy}`
    const pods = (await this.client.list('v1', 'Pod', this.release.namespace, selector, signal))
      .filter((p) => (p.status as {phase?: string} | undefined)?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined)
    if (pods.length === 0) {
      throw new UnreachableError(`Deployment ${this.release.namespace}/${names(this.release).proxy}: no running proxy pod to read metrics from (pods with ${selector})`, {
        subject: `Deployment ${this.release.namespace}/${names(this.release).proxy}`,
        suggestions: [`kubectl -n ${this.release.namespace} get pods -l ${selector}`],
      })
    }
    const result = new Map<string, PodCounters>()
    for (const pod of pods) {
      const name = pod.metadata?.name ?? ''
      const text = await this.client.podProxyGet(this.release.namespace, name, this.metricsPort, '/metrics', signal)
      result.set(name, countersFromExposition(text, this.release.name))
    }
    return {atMs, pods: result}
  }
}
