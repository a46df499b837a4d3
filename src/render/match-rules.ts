/**
 * The header → cookie → weight precedence (ingress-nginx canary semantics) expressed as ordered
 * rules for routers that have no canary annotations (Traefik, Gateway API): each rule says which
 * request header condition sends a request to which track. Routers list them in this order,
 * before the weighted default.
 */
import type {MatchSpec} from '../release/release.js'
import type {Track} from './workloads.js'

/** One override rule: requests whose header `header` matches go to `track`. */
export interface OverrideRule {
  /** Header inspected (`Cookie` for cookie rules). */
  readonly header: string
  /** How the header value is compared. */
  readonly type: 'Exact' | 'RegularExpression'
  /** Value or regex. */
  readonly value: string
  /** Destination track. */
  readonly track: Track
  /** Where the rule comes from, for priorities and names. */
  readonly source: 'header' | 'cookie'
}

/** Override rules in precedence order; empty without a canary or without a match. */
export function overrideRules(match: MatchSpec | undefined): OverrideRule[] {
  const rules: OverrideRule[] = []
  const header = match?.header
  if (header?.kind === 'always-never') {
    rules.push({header: header.name, type: 'Exact', value: 'always', track: 'canary', source: 'header'})
    rules.push({header: header.name, type: 'Exact', value: 'never', track: 'stable', source: 'header'})
  } else if (header?.kind === 'exact') {
    rules.push({header: header.name, type: 'Exact', value: header.value, track: 'canary', source: 'header'})
  } else if (header?.kind === 'pattern') {
    rules.push({header: header.name, type: 'RegularExpression', value: header.pattern, track: 'canary', source: 'header'})
  }
  if (match?.cookie !== undefined) {
    rules.push({header: 'Cookie', type: 'RegularExpression', value: cookieRegex(match.cookie.name, 'always'), track: 'canary', source: 'cookie'})
    rules.push({header: 'Cookie', type: 'RegularExpression', value: cookieRegex(match.cookie.name, 'never'), track: 'stable', source: 'cookie'})
  }
  return rules
}

/** A regex matching a `Cookie` header that carries `name=value` (RFC 6265 `; ` separated pairs), as Flagger does for Gateway API. */
export function cookieRegex(name: string, value: string): string {
  return `(^|;\\s*)${escapeRegex(name)}=${escapeRegex(value)}(;|$)`
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')
}
