/**
 * Route matching, compiled once per config: host (exact or `*.example.com`), path (exact, prefix,
 * or a pattern with named parameters such as `/cheddar/{name}/{id:[0-9]+}`), method and header.
 * Order: routes with an explicit `priority` first (highest first), then the more specific rule
 * (longer path, exact before prefix, exact host before wildcard, extra conditions), then file order.
 */
import type {ProxyConfig, ProxyRouteConfig} from './config.js'
import {createIpAllowList, type IpAllowList} from './ip-allow-list.js'

/** Header rules compiled to lowercase names: pairs to set and names to remove. */
export interface HeaderEdits {
  readonly set: readonly (readonly [string, string])[]
  readonly remove: ReadonlySet<string>
}

/** A route ready to match requests. */
export interface CompiledRoute {
  readonly name: string
  readonly service: string
  readonly stripPrefix: string | undefined
  readonly allowList: IpAllowList | undefined
  readonly requestHeaders: HeaderEdits | undefined
  readonly responseHeaders: HeaderEdits | undefined
  matches(host: string, path: string, method: string, headers: Readonly<Record<string, string | string[] | undefined>>): boolean
}

/** Finds the route for a request; the order is fixed at construction. */
export class RouteTable {
  readonly routes: readonly CompiledRoute[]

  constructor(config: Pick<ProxyConfig, 'routes'>) {
    const ranked = config.routes.map((route, index) => ({route: compileRoute(route), rank: rankOf(route), index}))
    ranked.sort((a, b) => compareRank(a.rank, b.rank) || a.index - b.index)
    this.routes = ranked.map((r) => r.route)
  }

  /** `host` is the Host header without port, lowercased; `path` is the URL path without query. */
  match(host: string, path: string, method: string, headers: Readonly<Record<string, string | string[] | undefined>>): CompiledRoute | undefined {
    const routes = this.routes
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!
      if (route.matches(host, path, method, headers)) return route
    }
    return undefined
  }
}

interface Rank {
  readonly explicit: boolean
  readonly priority: number
  readonly specificity: readonly number[]
}

function rankOf(route: ProxyRouteConfig): Rank {
  const path = route.path ?? route.pathPrefix ?? ''
  return {
    explicit: route.priority !== undefined,
    priority: route.priority ?? 0,
    specificity: [
      path.replace(/\{[^}]*\}/g, '').length,
      route.path !== undefined && !route.path.includes('{') ? 2 : route.path !== undefined ? 1 : 0,
      route.host === undefined ? 0 : route.host.startsWith('*.') ? 1 : 2,
      (route.method === undefined ? 0 : 1) + (route.header === undefined ? 0 : 1),
    ],
  }
}

function compareRank(a: Rank, b: Rank): number {
  if (a.explicit !== b.explicit) return a.explicit ? -1 : 1
  if (a.priority !== b.priority) return b.priority - a.priority
  for (let i = 0; i < a.specificity.length; i++) {
    const d = (b.specificity[i] ?? 0) - (a.specificity[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

function compileRoute(route: ProxyRouteConfig): CompiledRoute {
  const matchHost = compileHost(route.host)
  const matchPath = compilePath(route)
  const methods = route.method === undefined ? undefined : new Set((typeof route.method === 'string' ? [route.method] : route.method).map((m) => m.toUpperCase()))
  const header = route.header
  const headerName = header?.name.toLowerCase()
  const headerPattern = header?.pattern === undefined ? undefined : new RegExp(header.pattern)
  return {
    name: route.name,
    service: route.service,
    stripPrefix: route.stripPrefix ? route.pathPrefix : undefined,
    allowList: route.allow === undefined ? undefined : createIpAllowList(route.allow, `route ${route.name}`),
    requestHeaders: compileHeaderEdits(route.requestHeaders),
    responseHeaders: compileHeaderEdits(route.responseHeaders),
    matches(host, path, method, headers) {
      if (matchHost !== undefined && !matchHost(host)) return false
      if (matchPath !== undefined && !matchPath(path)) return false
      if (methods !== undefined && !methods.has(method)) return false
      if (headerName !== undefined) {
        const raw = headers[headerName]
        if (raw === undefined) return false
        const value = typeof raw === 'string' ? raw : raw.join(', ')
        if (header?.value !== undefined) return value === header.value
        if (headerPattern !== undefined) return headerPattern.test(value)
      }
      return true
    },
  }
}

function compileHost(host: string | undefined): ((host: string) => boolean) | undefined {
  if (host === undefined) return undefined
  const lower = host.toLowerCase()
  if (lower.startsWith('*.')) {
    const suffix = lower.slice(1)
    return (h) => h.length > suffix.length && h.endsWith(suffix)
  }
  return (h) => h === lower
}

function compilePath(route: ProxyRouteConfig): ((path: string) => boolean) | undefined {
  if (route.pathPrefix !== undefined) {
    const prefix = route.pathPrefix
    if (prefix === '/') return undefined
    // Segment-aware like Gateway API PathPrefix: /cheddar matches /cheddar and /cheddar/x, not /cheddars.
    const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
    return (p) => p === base || (p.startsWith(base) && p.charCodeAt(base.length) === 47)
  }
  if (route.path === undefined) return undefined
  const path = route.path
  if (!path.includes('{')) return (p) => p === path
  const regex = compilePathPattern(path)
  return (p) => regex.test(p)
}

/** `/cheddar/{name}/{id:[0-9]+}` → an anchored RegExp with named groups; a bare `{name}` is one segment. */
export function compilePathPattern(pattern: string): RegExp {
  let source = '^'
  let last = 0
  for (const match of pattern.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g)) {
    source += escapeRegex(pattern.slice(last, match.index))
    source += `(?<${match[1] ?? ''}>${match[2] ?? '[^/]+'})`
    last = match.index + match[0].length
  }
  source += `${escapeRegex(pattern.slice(last))}$`
  return new RegExp(source)
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function compileHeaderEdits(rules: Readonly<Record<string, string | null>> | undefined): HeaderEdits | undefined {
  if (rules === undefined) return undefined
  const set: [string, string][] = []
  const remove = new Set<string>()
  for (const [name, value] of Object.entries(rules)) {
    if (value === null || value === '') remove.add(name.toLowerCase())
    else set.push([name.toLowerCase(), value])
  }
  return {set, remove}
}

/** The path after stripping `prefix` (segment-aware), always starting with `/`; the query is kept. */
export function stripPathPrefix(url: string, prefix: string): string {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  const rest = url.slice(base.length)
  return rest === '' || rest.charCodeAt(0) === 63 ? `/${rest}` : rest
}
