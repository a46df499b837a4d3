/**
 * Traefik router rules shared by the CRD and file providers. Values are quoted with backticks;
 * load-release refuses backticks in every value that lands here. Traefik v3 (traefik.io) writes
 * `Header`/`HeaderRegexp`; v2 (traefik.containo.us) `Headers`/`HeadersRegexp`
 * (traefik/traefik docs/content/migrate/v2-to-v3-details.md).
 */
import type {TraefikApiGroup} from '../release/release.js'
import type {OverrideRule} from './match-rules.js'

/** Priorities: header rules beat cookie rules beat the weighted route (ingress-nginx precedence). */
export const TRAEFIK_PRIORITY = {header: 300, cookie: 200, weighted: 100} as const

/** `Host(...) && PathPrefix(...)`. */
export function hostPathRule(host: string, path: string): string {
  return `Host(\`${host}\`) && PathPrefix(\`${path}\`)`
}

/** The host/path rule narrowed by one override rule. */
export function overrideRule(host: string, path: string, rule: OverrideRule, group: TraefikApiGroup): string {
  const v3 = group === 'traefik.io'
  const matcher = rule.type === 'Exact' ? (v3 ? 'Header' : 'Headers') : v3 ? 'HeaderRegexp' : 'HeadersRegexp'
  return `${hostPathRule(host, path)} && ${matcher}(\`${rule.header}\`, \`${rule.value}\`)`
}
