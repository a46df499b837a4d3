/**
 * The release spec after parsing: readonly, normalized and typed. YAML never leaves
 * `load-release.ts` (and `src/config-file/`); everything else (engine, routers, renderers) reads these types.
 * Units are in the names: durations are milliseconds, percentages say so.
 */
import type {AnalysisPolicy} from '../rollout/core/types.js'
import type {ImageRef} from './image-ref.js'

/** The routers `spec.ingress.router` can name (the data plane that splits traffic). */
export const ROUTER_KINDS = ['nginx', 'traefik', 'traefik-v1', 'traefik-file', 'gateway-api', 'proxy'] as const
/** One router kind; `proxy` is canary's bundled proxy. */
export type RouterKind = (typeof ROUTER_KINDS)[number]

/** Where the release runs: the bundled proxy in front of local processes, or a Kubernetes cluster. */
export const TARGET_KINDS = ['local', 'kubernetes'] as const
/** One target kind. */
export type TargetKind = (typeof TARGET_KINDS)[number]

/** The two Traefik CRD API groups: `traefik.io` (v2.10+ and v3, default) and `traefik.containo.us` (v2). */
export const TRAEFIK_API_GROUPS = ['traefik.io', 'traefik.containo.us'] as const
/** One Traefik CRD API group. */
export type TraefikApiGroup = (typeof TRAEFIK_API_GROUPS)[number]

/** One step of the plan: move traffic, or wait (for a duration, or for `canary step`/`promote` when `durationMs` is absent). */
export type Step =
  | {readonly kind: 'setWeight'; readonly weight: number}
  | {readonly kind: 'pause'; readonly durationMs?: number}

/**
 * Header match (ingress-nginx `canary-by-header` semantics):
 * `always-never`: value `always` → canary, `never` → stable, anything else falls through to cookie then weight;
 * `exact`: the header equals `value` → canary; `pattern`: the header matches the regex → canary.
 */
export type HeaderMatch =
  | {readonly kind: 'always-never'; readonly name: string}
  | {readonly kind: 'exact'; readonly name: string; readonly value: string}
  | {readonly kind: 'pattern'; readonly name: string; readonly pattern: string}

/** Cookie match: cookie `name` = `always` → canary, `never` → stable, anything else falls through to weight. */
export interface CookieMatch {
  /** Cookie name. */
  readonly name: string
}

/** Requests that go to (or away from) the canary whatever the weight; precedence header → cookie → weight. */
export interface MatchSpec {
  /** Header rule, checked first. */
  readonly header?: HeaderMatch
  /** Cookie rule, checked when the header rule did not decide. */
  readonly cookie?: CookieMatch
}

/** Session stickiness: a client that was sent to one track stays there. */
export interface StickySpec {
  /** Name of the affinity cookie the router sets. */
  readonly cookie: string
  /** Cookie lifetime; a session cookie when absent. */
  readonly maxAgeSeconds?: number
}

/** Copy a share of requests to the canary; the copies' responses are discarded. */
export interface MirrorSpec {
  /** Share of requests copied, 1–100. */
  readonly percent: number
}

/** Gateway API parent (the Gateway an HTTPRoute attaches to). */
export interface GatewayRef {
  /** Gateway name. */
  readonly name: string
  /** Gateway namespace; the release namespace when absent. */
  readonly namespace?: string
  /** Listener name on the Gateway. */
  readonly sectionName?: string
}

/** How users reach the release (the apex route) and which router splits traffic. */
export interface IngressSpec {
  /** Host name users call, e.g. `my-app.example.com`. */
  readonly host: string
  /** Path prefix, `/` by default. */
  readonly path: string
  /** Router that splits traffic. */
  readonly router: RouterKind
  /** IngressClass for Ingress-based routers (`spec.ingressClassName`). */
  readonly className?: string
  /** Traefik CRD group (router `traefik`), and the rule syntax (v3 for traefik.io, v2 for traefik.containo.us). */
  readonly traefikApiGroup: TraefikApiGroup
  /** Gateway for `gateway-api` HTTPRoute parentRefs. */
  readonly gateway?: GatewayRef
  /** TLS secret for the host; no TLS when absent. */
  readonly tls?: {readonly secretName: string}
}

/** Container resources, as Kubernetes quantities. */
export interface ResourcesSpec {
  /** Requested resources, e.g. `{cpu: '100m', memory: '128Mi'}`. */
  readonly requests?: Readonly<Record<string, string>>
  /** Limits. */
  readonly limits?: Readonly<Record<string, string>>
}

/** HTTP readiness/liveness probe. */
export interface ProbeSpec {
  /** Path probed with GET. */
  readonly path: string
  /** Port probed; the release port when absent. */
  readonly port: number
  /** Seconds between probes. */
  readonly periodSeconds: number
  /** Seconds before the first probe. */
  readonly initialDelaySeconds: number
}

/** User PromQL for the Kubernetes metric source; placeholders `{{namespace}}`, `{{name}}`, `{{track}}`, `{{interval}}`. */
export interface PrometheusSpec {
  /** Prometheus base URL. */
  readonly url: string
  /** Query overrides; the router's default query is used for each one absent. */
  readonly queries: {readonly successRate?: string; readonly latencyP99?: string; readonly requests?: string}
}

/** Settings of the core's policy that are optional there (the core has defaults) and always set here: normalising applies the same defaults. */
type DefaultedPolicy = 'onInconclusive' | 'errorTolerance' | 'latencyTolerance' | 'maxFalsePassRate'

/**
 * How each step's canary is judged: the core's `AnalysisPolicy` (one field per setting, documented
 * there) with every default applied, plus where the metrics come from. A new threshold is a new
 * field of `AnalysisPolicy`, the schema and normalising; this type follows.
 */
export type AnalysisSpec = AnalysisPolicy & Readonly<Required<Pick<AnalysisPolicy, DefaultedPolicy>>> & {
  /** Prometheus for the Kubernetes target; the bundled proxy's metrics are used when absent. */
  readonly prometheus?: PrometheusSpec
}

/** Local target: the bundled proxy in front of processes on this machine. Exactly one of `command`/`upstreams`. */
export interface LocalSpec {
  /** Shell command started once per track; the engine passes the port and image in the environment. */
  readonly command?: string
  /** Already-running servers per image ref or tag, e.g. `{v1: ['http://127.0.0.1:9001']}`. */
  readonly upstreams?: Readonly<Record<string, readonly string[]>>
  /** Where the proxy listens (`host:port`), default `127.0.0.1:8080`. */
  readonly listen: string
  /** Where the proxy's admin API listens; chosen by the engine when absent. */
  readonly adminListen?: string
  /** How long a started process may take to answer its probe. */
  readonly readyTimeoutMs: number
}

/** Settings for the bundled proxy when it runs in the cluster (router `proxy` on Kubernetes). */
export interface ProxySpec {
  /** Proxy image. */
  readonly image: string
  /** Proxy replicas. */
  readonly replicas: number
}

/** A parsed, normalized release. */
export interface Release {
  /** `metadata.name`, a DNS-1123 label; stable objects are named after it. */
  readonly name: string
  /** `metadata.namespace`, `default` when absent. */
  readonly namespace: string
  /** The stable image; `--image` names the canary. */
  readonly image: ImageRef
  /** Stable replicas (the canary gets the same count). */
  readonly replicas: number
  /** Container port the app listens on; Services expose the same port. */
  readonly port: number
  /** Require pods of one track on different nodes (required pod anti-affinity). */
  readonly spread: boolean
  /** Container resources. */
  readonly resources?: ResourcesSpec
  /** Environment variables, sorted by name. */
  readonly env: Readonly<Record<string, string>>
  /** HTTP probe; none when absent. */
  readonly probe?: ProbeSpec
  /** Routing; absent only for a local target without a host. */
  readonly ingress?: IngressSpec
  /** The plan; the last `setWeight` equals `totalWeight`. */
  readonly steps: readonly Step[]
  /** Denominator of every weight (100 by default; 1000 allows 0.1 % steps). */
  readonly totalWeight: number
  /** Header/cookie overrides. */
  readonly match?: MatchSpec
  /** Session stickiness. */
  readonly sticky?: StickySpec
  /** Traffic mirroring to the canary. */
  readonly mirror?: MirrorSpec
  /** How the canary is judged. */
  readonly analysis: AnalysisSpec
  /** Where the release runs. */
  readonly target: TargetKind
  /** Local target settings (present when `target` is `local`). */
  readonly local?: LocalSpec
  /** In-cluster proxy settings (router `proxy` on Kubernetes). */
  readonly proxy: ProxySpec
}
