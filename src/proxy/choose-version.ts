/**
 * The one place that decides which version serves a request. Default precedence, as ingress-nginx
 * runs it (rootfs/etc/nginx/lua/balancer.lua, route_to_alternative_balancer): the sticky
 * (affinity) cookie first, then the canary header, then the canary cookie, then weights. With
 * `sticky.precedence: afterOverrides` the header and cookie come before the sticky cookie, as
 * with Traefik, whose header/cookie routers bypass the weighted service that holds the sticky
 * cookie. docs/proxy.md "Choosing a version" has the table against every renderer's target.
 *
 * - Header without `value`/`pattern`: `always` → canary, `never` → stable, anything else falls through.
 * - Header with `value` (exact) or `pattern` (regex): a match → canary, anything else falls through.
 * - Cookie: `always` → canary, `never` → stable, anything else falls through.
 * - Sticky cookie: the version it names, if that version still exists and is healthy (whatever
 *   its weight: a canary at weight 0 keeps its sticky clients, as in ingress-nginx).
 * - Weights: deterministic EDF over the healthy versions.
 * An override naming a version with no healthy server falls through to the next rule.
 */

/** What chooseVersion needs to know about a version. */
export interface ChoosableVersion {
  readonly name: string
  /** True while at least one of its servers is healthy. */
  readonly healthy: boolean
}

/** The canary-by-header rule, compiled once. */
export interface HeaderOverride {
  readonly value?: string | undefined
  readonly pattern?: RegExp | undefined
}

/** Where the sticky cookie sits in the precedence. */
export type StickyPrecedence = 'first' | 'afterOverrides'

/** What chooseVersion needs to know about a service. */
export interface ChoosableService<V extends ChoosableVersion> {
  readonly canary: V | undefined
  readonly stable: V | undefined
  readonly header: HeaderOverride | undefined
  /** Default `first` (ingress-nginx). */
  readonly stickyPrecedence: StickyPrecedence
  /** The version a sticky cookie value names, or undefined for unknown values. */
  stickyVersion(cookieValue: string): V | undefined
  /** The next version by weight among healthy versions, or undefined when none is healthy. */
  pickByWeight(): V | undefined
}

/** The request facts that can steer the choice (already extracted from headers and cookies). */
export interface VersionChoiceFacts {
  readonly header: string | undefined
  readonly cookie: string | undefined
  readonly sticky: string | undefined
}

/** Why a version was chosen; logged and used for the sticky cookie. */
export type ChoiceReason = 'header' | 'cookie' | 'sticky' | 'weight'

export interface VersionChoice<V> {
  readonly version: V
  readonly reason: ChoiceReason
}

/** Chooses the version for one request; undefined when no version is healthy (the caller answers 503). */
export function chooseVersion<V extends ChoosableVersion>(facts: VersionChoiceFacts, service: ChoosableService<V>): VersionChoice<V> | undefined {
  const stickyFirst = service.stickyPrecedence === 'first'
  if (stickyFirst) {
    const sticky = stickyChoice(facts, service)
    if (sticky !== undefined) return sticky
  }
  if (facts.header !== undefined && service.header !== undefined) {
    const version = headerOverride(facts.header, service.header, service)
    if (version !== undefined && version.healthy) return {version, reason: 'header'}
  }
  if (facts.cookie !== undefined) {
    const version = facts.cookie === 'always' ? service.canary : facts.cookie === 'never' ? service.stable : undefined
    if (version !== undefined && version.healthy) return {version, reason: 'cookie'}
  }
  if (!stickyFirst) {
    const sticky = stickyChoice(facts, service)
    if (sticky !== undefined) return sticky
  }
  const version = service.pickByWeight()
  return version === undefined ? undefined : {version, reason: 'weight'}
}

function stickyChoice<V extends ChoosableVersion>(facts: VersionChoiceFacts, service: ChoosableService<V>): VersionChoice<V> | undefined {
  if (facts.sticky === undefined) return undefined
  const version = service.stickyVersion(facts.sticky)
  return version !== undefined && version.healthy ? {version, reason: 'sticky'} : undefined
}

function headerOverride<V extends ChoosableVersion>(value: string, rule: HeaderOverride, service: ChoosableService<V>): V | undefined {
  if (rule.value !== undefined) return value === rule.value ? service.canary : undefined
  if (rule.pattern !== undefined) return rule.pattern.test(value) ? service.canary : undefined
  if (value === 'always') return service.canary
  if (value === 'never') return service.stable
  return undefined
}
