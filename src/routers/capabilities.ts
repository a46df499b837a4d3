/**
 * What each router can express. `canary validate` (and `canary render --router`) refuse a spec
 * that asks a router for something it cannot do, naming the router and the field: a silently
 * dropped header rule or mirror is worse than an error. The limits live in each router's
 * definition (src/routers/<kind>/index.ts); docs/render.md has the same table.
 */
import type {RouterKind} from '../release/release.js'
import {ROUTERS} from './index.js'
import type {RouterDefinition, RouterFeature, RouterFeatures, RouterProblem, UsedFeature} from './router-definition.js'

/** True when `router` can do `feature`. */
export function canDo(router: RouterKind, feature: RouterFeature): boolean {
  return (ROUTERS[router].limits as Partial<Record<RouterFeature, string>>)[feature] === undefined
}

/** Routers that can do `feature`, for suggestions. */
export function routersSupporting(feature: RouterFeature): RouterKind[] {
  return (Object.keys(ROUTERS) as RouterKind[]).filter((router) => canDo(router, feature))
}

/** The problems of using `features` with `router`; empty when the router can do them all. */
export function capabilityProblems(router: RouterKind, features: readonly UsedFeature[]): RouterProblem[] {
  const problems: RouterProblem[] = []
  for (const {feature, path} of features) {
    const why = (ROUTERS[router].limits as Partial<Record<RouterFeature, string>>)[feature]
    if (why === undefined) continue
    problems.push({
      at: path.split('.'),
      message: `router ${router} cannot do ${FEATURE_NAMES[feature]}: ${why}`,
      suggestion: `remove ${path}, or use a router that can: ${routersSupporting(feature).join(', ')}`,
    })
  }
  return problems
}

/** Everything `router` refuses in a spec: the features it cannot do, then its own rules. */
export function routerProblems(router: RouterKind, features: RouterFeatures): RouterProblem[] {
  return [...capabilityProblems(router, features.used), ...ROUTERS[router].validate(features)]
}

/** The `spec.ingress` field `router` cannot work without, if any. */
export function routerRequiredIngressField(router: RouterKind): RouterDefinition['requiredIngressField'] {
  const definition: RouterDefinition = ROUTERS[router]
  return definition.requiredIngressField
}

const FEATURE_NAMES: Record<RouterFeature, string> = {
  headerAlwaysNever: 'header match',
  headerExact: 'header match by value',
  headerPattern: 'header match by pattern',
  cookie: 'cookie match',
  sticky: 'sticky sessions',
  mirror: 'percentage mirroring',
}
