/**
 * What each router can express. `canary validate` (and `canary render --router`) refuse a spec
 * that asks a router for something it cannot do, naming the router and the field: a silently
 * dropped header rule or mirror is worse than an error. docs/render.md has the same table.
 */
import type {RouterCapabilities} from '../rollout/ports.js'
import type {RouterKind} from '../release/release.js'

/** Spec features that not every router supports. */
export type RouterFeature = 'headerAlwaysNever' | 'headerExact' | 'headerPattern' | 'cookie' | 'sticky' | 'mirror'

/** Per router: for each unsupported feature, why (shown to the user). */
export const ROUTER_LIMITS: Readonly<Record<RouterKind, Partial<Record<RouterFeature, string>>>> = {
  // ingress-nginx mirrors 100 % of requests (mirror-target) and cannot sample a percentage.
  nginx: {mirror: 'ingress-nginx can only mirror every request (mirror-target), not a percentage'},
  traefik: {},
  // Traefik 1.7's Kubernetes Ingress provider maps only path rule types; header/cookie rules and mirroring need v2+.
  'traefik-v1': {
    headerAlwaysNever: 'Traefik 1.x Ingress annotations cannot route by header',
    headerExact: 'Traefik 1.x Ingress annotations cannot route by header',
    headerPattern: 'Traefik 1.x Ingress annotations cannot route by header',
    cookie: 'Traefik 1.x Ingress annotations cannot route by cookie',
    mirror: 'Traefik 1.x has no traffic mirroring',
  },
  'traefik-file': {},
  // HTTPRoute sessionPersistence is experimental-channel only (Gateway API v1.6).
  'gateway-api': {sticky: 'Gateway API has no standard-channel session persistence (sessionPersistence is experimental)'},
  proxy: {},
}

/** The features a spec uses, extracted from the raw or the parsed spec; `path` locates each one. */
export interface UsedFeature {
  /** The feature. */
  readonly feature: RouterFeature
  /** Dotted field path, e.g. `spec.mirror`. */
  readonly path: string
}

/** One refused feature. */
export interface CapabilityProblem {
  /** Dotted field path of the feature. */
  readonly path: string
  /** `router <kind> cannot …: <why>`. */
  readonly message: string
  /** What to do instead. */
  readonly suggestion: string
}

/** Routers that can do `feature`, for suggestions. */
export function routersSupporting(feature: RouterFeature): RouterKind[] {
  return (Object.keys(ROUTER_LIMITS) as RouterKind[]).filter((router) => ROUTER_LIMITS[router][feature] === undefined)
}

/** The problems of using `features` with `router`; empty when the router can do them all. */
export function capabilityProblems(router: RouterKind, features: readonly UsedFeature[]): CapabilityProblem[] {
  const problems: CapabilityProblem[] = []
  for (const {feature, path} of features) {
    const why = ROUTER_LIMITS[router][feature]
    if (why === undefined) continue
    problems.push({
      path,
      message: `router ${router} cannot do ${FEATURE_NAMES[feature]}: ${why}`,
      suggestion: `remove ${path}, or use a router that can: ${routersSupporting(feature).join(', ')}`,
    })
  }
  return problems
}

const FEATURE_NAMES: Record<RouterFeature, string> = {
  headerAlwaysNever: 'header match',
  headerExact: 'header match by value',
  headerPattern: 'header match by pattern',
  cookie: 'cookie match',
  sticky: 'sticky sessions',
  mirror: 'percentage mirroring',
}

/** A router's capabilities for the engine's `TrafficRouter` port, derived from ROUTER_LIMITS (one table, no second copy). */
export function capabilitiesOf(router: RouterKind): RouterCapabilities {
  const can = (feature: RouterFeature) => ROUTER_LIMITS[router][feature] === undefined
  return {
    headerMatch: can('headerAlwaysNever') && can('headerExact'),
    headerPattern: can('headerPattern'),
    cookieMatch: can('cookie'),
    sticky: can('sticky'),
    mirror: can('mirror'),
  }
}
