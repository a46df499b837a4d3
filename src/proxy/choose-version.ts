/**
 * The one place that decides which version serves a request. Precedence, as in ingress-nginx's
 * canary annotations (canary-by-header, then canary-by-cookie, then canary-weight; see
 * research/anchors.md): header, then cookie, then the sticky cookie, then weights.
 *
 * - Header without `value`/`pattern`: `always` → canary, `never` → stable, anything else falls through.
 * - Header with `value` (exact) or `pattern` (regex): a match → canary, anything else falls through.
 * - Cookie: `always` → canary, `never` → stable, anything else falls through.
 * - Sticky cookie: the version it names, if that version still exists and is healthy.
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

/** What chooseVersion needs to know about a service. */
export interface ChoosableService<V extends ChoosableVersion> {
  readonly canary: V | undefined
  readonly stable: V | undefined
  readonly header: HeaderOverride | undefined
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
  if (facts.header !== undefined && service.header !== undefined) {
    const version = headerOverride(facts.header, service.header, service)
    if (version !== undefined && version.healthy) return {version, reason: 'header'}
  }
  if (facts.cookie !== undefined) {
    const version = facts.cookie === 'always' ? service.canary : facts.cookie === 'never' ? service.stable : undefined
    if (version !== undefined && version.healthy) return {version, reason: 'cookie'}
  }
  if (facts.sticky !== undefined) {
    const version = service.stickyVersion(facts.sticky)
    if (version !== undefined && version.healthy) return {version, reason: 'sticky'}
  }
  const version = service.pickByWeight()
  return version === undefined ? undefined : {version, reason: 'weight'}
}

function headerOverride<V extends ChoosableVersion>(value: string, rule: HeaderOverride, service: ChoosableService<V>): V | undefined {
  if (rule.value !== undefined) return value === rule.value ? service.canary : undefined
  if (rule.pattern !== undefined) return rule.pattern.test(value) ? service.canary : undefined
  if (value === 'always') return service.canary
  if (value === 'never') return service.stable
  return undefined
}
