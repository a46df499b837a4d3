/**
 * Everything canary knows about one router kind, in one value: what it cannot express (and why),
 * the spec rules only it has, the objects it renders, the Role rules its writes need, the
 * TrafficRouter that drives it on a cluster, and how it is measured (built-in Prometheus queries,
 * or a metric source of its own). Each kind has a
 * folder beside this file; `ROUTERS` (index.ts) lists them, exhaustively.
 */
import type {KubeClient} from '../kube/client.js'
import type {BuildOptions, KubeObject, RenderState} from '../render/types.js'
import type {Release, RouterKind} from '../release/release.js'
import type {MetricSource, Track, TrafficRouter} from '../rollout/ports.js'

/** Spec features that not every router supports. */
export type RouterFeature = 'headerAlwaysNever' | 'headerExact' | 'headerPattern' | 'cookie' | 'sticky' | 'mirror'

/** For each feature the router cannot do, why (shown to the user). */
export type RouterLimits = Readonly<Partial<Record<RouterFeature, string>>>

/** The features a spec uses, extracted from the raw or the parsed spec; `path` locates each one. */
export interface UsedFeature {
  /** The feature. */
  readonly feature: RouterFeature
  /** Dotted field path, e.g. `spec.mirror`. */
  readonly path: string
}

/** What a spec asks of its router, from raw or parsed data. */
export interface RouterFeatures {
  readonly used: readonly UsedFeature[]
  /** Header name, value and pattern strings, for routers that quote them in rule strings. */
  readonly headerTexts: readonly string[]
  readonly weights: readonly number[]
  readonly totalWeight: number
}

/** A spec problem only this router has, at a field path (`['spec', 'totalWeight']`). */
export interface RouterProblem {
  readonly at: readonly string[]
  readonly message: string
  readonly suggestion?: string
}

/** One RBAC PolicyRule. */
export interface PolicyRule {
  readonly apiGroups: readonly string[]
  readonly resources: readonly string[]
  readonly verbs: readonly string[]
  /** Only these object names (get/update/patch/delete, and list/watch with a metadata.name field selector). */
  readonly resourceNames?: readonly string[]
}

/** The Role rules and objects a router needs on a cluster (src/targets/kubernetes/rbac.ts adds the common ones). */
export interface RouterRbac {
  /** True when the router applies a ConfigMap of its own (the CLI then also needs `patch` on ConfigMaps). */
  readonly appliesConfigMap?: boolean
  /** Rules for the objects the router writes and reads. */
  rules(release: Release): PolicyRule[]
  /** Objects its data plane needs, for an administrator to apply once (the in-cluster proxy's own account). */
  dataPlaneObjects?(release: Release, labels: Readonly<Record<string, string>>): KubeObject[]
}

/** The PromQL of one track; placeholders already filled. */
export interface TrackQueries {
  /** Requests completed in the window. */
  readonly requests: string
  /** 5xx responses in the window. */
  readonly errors: string
  /** Cumulative latency histogram of the window, one series per `le`. */
  readonly latencyBuckets: string
  /** The real 99th percentile in seconds (`histogram_quantile`), for display and for promtool checks. */
  readonly latencyP99: string
}

/** Values substituted into query templates. */
export interface QueryContext {
  readonly namespace: string
  readonly name: string
  readonly track: Track
  /** Kubernetes Service of the track. */
  readonly service: string
  /** Main (apex) Ingress / route name. */
  readonly ingress: string
  readonly port: number
  /** Window length as a PromQL duration, e.g. `60s`. */
  readonly interval: string
}

/** One router kind. */
export interface RouterDefinition {
  readonly kind: RouterKind
  /** What it cannot express; `canary validate` refuses a spec that asks for it. */
  readonly limits: RouterLimits
  /** A `spec.ingress` field it cannot work without, what it holds, and what for (Gateway API's parent Gateway). */
  readonly requiredIngressField?: {readonly field: 'gateway'; readonly expected: string; readonly purpose: string}
  /** Lines `canary init` writes under `ingress:` for it (its own fields, commented). */
  readonly starterIngressLines?: readonly string[]
  /** Spec rules beyond `limits` (quoting, totals, precision); empty when the spec is fine. */
  validate(features: RouterFeatures): RouterProblem[]
  /** Its routing objects for `state` (what `canary render` prints and the Kubernetes router applies). */
  build(release: Release, state: RenderState, options?: BuildOptions): KubeObject[]
  /** Refuses rendered objects that would fight objects already in the cluster (`canary render --existing`). */
  checkCollisions?(rendered: readonly KubeObject[], existing: readonly KubeObject[]): void
  readonly rbac: RouterRbac
  /** The TrafficRouter that drives it on a cluster; throws a ConfigError when it cannot run there. */
  kubeRouter(client: KubeClient, release: Release): TrafficRouter
  /** Its built-in Prometheus queries; without them the spec must give its own. */
  readonly builtInQueries?: (context: QueryContext) => TrackQueries
  /** Its own metric source on a cluster, used when the spec names no Prometheus (the in-cluster proxy's /metrics). */
  readonly kubeMetrics?: (client: KubeClient, release: Release) => MetricSource
}

/** Escapes a PromQL label value. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')
}

/** Escapes a string for a PromQL regex matcher. */
export function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The four queries of a router whose metrics are a request counter with a status label and a
 * latency histogram, for the series `selector` picks. Latency is the window's histogram, from
 * which the judge takes the 99th percentile the way `histogram_quantile` does.
 */
export function counterAndHistogramQueries(metrics: {readonly requests: string; readonly statusLabel: string; readonly buckets: string}, selector: string, interval: string): TrackQueries {
  return {
    requests: `sum(increase(${metrics.requests}{${selector}}[${interval}]))`,
    errors: `sum(increase(${metrics.requests}{${selector},${metrics.statusLabel}=~"5.."}[${interval}]))`,
    latencyBuckets: `sum by (le) (increase(${metrics.buckets}{${selector}}[${interval}]))`,
    latencyP99: `histogram_quantile(0.99, sum by (le) (rate(${metrics.buckets}{${selector}}[${interval}])))`,
  }
}
