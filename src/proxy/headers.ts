/**
 * Header handling for forwarding. Hop-by-hop headers are stripped in both directions: the RFC 9110
 * §7.6.1 list (Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade) plus
 * Trailer and the Proxy-Authenticate/-Authorization pair (RFC 2616 §13.5.1), and every name listed
 * in `Connection` (as @fastify/reply-from does).
 */
import {util} from 'undici'

import type {HeaderEdits} from './route-table.js'

const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'proxy-authenticate', 'proxy-authorization'])
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip'])
/** Node's server already answered `Expect: 100-continue` to the client; undici refuses the header. */
const CLIENT_ONLY = 'expect'

/** Names listed in a Connection header value, lowercased; undefined when there are none beyond keep-alive/close. */
export function connectionListed(connection: string | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined
  // Fast path for the values almost every request carries.
  if (connection.length <= 10) {
    const lower = connection.toLowerCase()
    if (lower === 'keep-alive' || lower === 'close') return undefined
  }
  let listed: Set<string> | undefined
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase()
    if (name === '' || name === 'close' || name === 'keep-alive') continue
    ;(listed ??= new Set()).add(name)
  }
  return listed
}

/** What the proxy adds to every forwarded request. */
export interface ForwardedFacts {
  readonly peer: string
  readonly clientAddress: string
  readonly proto: string
  readonly localPort: string
  /** Trust incoming X-Forwarded-* (trustedProxyHops > 0): append to them instead of replacing. */
  readonly trustIncoming: boolean
}

/**
 * Builds the upstream request headers as a flat [name, value, …] list (undici accepts it): copies
 * everything but hop-by-hop and X-Forwarded-*, adds X-Forwarded-For/-Host/-Proto/-Port and X-Real-Ip,
 * then applies the route's header edits. `keepUpgrade` keeps Connection/Upgrade for WebSocket.
 */
export function upstreamRequestHeaders(incoming: NodeJS.Dict<string | string[]>, facts: ForwardedFacts, edits: HeaderEdits | undefined, keepUpgrade: boolean): string[] {
  const out: string[] = []
  const listed = connectionListed(incoming.connection as string | undefined)
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined) continue
    // HTTP/2 pseudo-headers (`:method`, `:path`, `:authority`...) are not headers in HTTP/1.1.
    if (name.charCodeAt(0) === 58) continue
    if (HOP_BY_HOP.has(name)) {
      if (keepUpgrade && name === 'upgrade') out.push(name, value as string)
      continue
    }
    if (FORWARDED.has(name) || name === CLIENT_ONLY) continue
    if (listed !== undefined && listed.has(name)) continue
    if (edits !== undefined && (edits.remove.has(name) || hasName(edits.set, name))) continue
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  if (keepUpgrade) out.push('connection', 'upgrade')
  // HTTP/2 carries the host in `:authority` (RFC 9113 §8.3.1); HTTP/1.1 upstreams need `Host`.
  const authority = incoming.host === undefined ? joinValue(incoming[':authority']) : undefined
  if (authority !== undefined && !(edits !== undefined && (edits.remove.has('host') || hasName(edits.set, 'host')))) out.push('host', authority)
  const priorFor = facts.trustIncoming ? joinValue(incoming['x-forwarded-for']) : undefined
  out.push('x-forwarded-for', priorFor === undefined ? facts.peer : `${priorFor}, ${facts.peer}`)
  const host = (facts.trustIncoming ? joinValue(incoming['x-forwarded-host']) : undefined) ?? joinValue(incoming.host) ?? authority
  if (host !== undefined) out.push('x-forwarded-host', host)
  out.push('x-forwarded-proto', (facts.trustIncoming ? joinValue(incoming['x-forwarded-proto']) : undefined) ?? facts.proto)
  out.push('x-forwarded-port', (facts.trustIncoming ? joinValue(incoming['x-forwarded-port']) : undefined) ?? facts.localPort)
  out.push('x-real-ip', facts.clientAddress)
  if (edits !== undefined) for (const [name, value] of edits.set) out.push(name, value)
  return out
}

/** Response headers for `res.writeHead`: lowercase names; repeated headers (Set-Cookie) as arrays. */
export type ResponseHeaders = Record<string, string | string[]>

/**
 * Converts undici's raw response headers (Buffers) to a header object for `res.writeHead`, without
 * hop-by-hop headers, with the route's edits and an optional sticky Set-Cookie. An object, not a
 * flat list: Node sends an object straight to the wire, while a list goes through remove/append
 * per header.
 */
export function downstreamResponseHeaders(raw: readonly Buffer[] | readonly string[], edits: HeaderEdits | undefined, setCookie: string | undefined): ResponseHeaders {
  // No prototype: an upstream header named __proto__ stays an ordinary key.
  const out = Object.create(null) as ResponseHeaders
  let listed: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    // undici's lookup returns interned lowercase names for the common headers, without a copy.
    const name = util.headerNameToString(raw[i]!)
    if (name === 'connection') {
      listed = connectionListed(raw[i + 1]!.toString('latin1'))
      continue
    }
    if (HOP_BY_HOP.has(name)) continue
    if (edits !== undefined && (edits.remove.has(name) || hasName(edits.set, name))) continue
    const value = raw[i + 1]!.toString('latin1')
    const prior = out[name]
    out[name] = prior === undefined ? value : typeof prior === 'string' ? [prior, value] : [...prior, value]
  }
  if (listed !== undefined) for (const name of listed) delete out[name]
  if (edits !== undefined) for (const [name, value] of edits.set) out[name] = value
  if (setCookie !== undefined) {
    const prior = out['set-cookie']
    out['set-cookie'] = prior === undefined ? setCookie : typeof prior === 'string' ? [prior, setCookie] : [...prior, setCookie]
  }
  return out
}

function hasName(pairs: readonly (readonly [string, string])[], name: string): boolean {
  for (let i = 0; i < pairs.length; i++) if (pairs[i]![0] === name) return true
  return false
}

function joinValue(value: string | string[] | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.join(', ')
}

/**
 * The value of the first cookie `name` in a Cookie header (names compared case-sensitively), or
 * undefined. Quotes are part of the value (RFC 6265 §4.1.1 cookie-value): `canary="always"` is not
 * `always`, as for ingress-nginx's $cookie_ variable and the Cookie-header regexes the Traefik and
 * Gateway API renderers write.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  let start = 0
  while (start < header.length) {
    while (header.charCodeAt(start) === 32) start++
    const end = header.indexOf(';', start)
    const stop = end === -1 ? header.length : end
    const eq = header.indexOf('=', start)
    if (eq !== -1 && eq < stop && eq - start === name.length && header.startsWith(name, start)) {
      return header.slice(eq + 1, stop).trim()
    }
    start = stop + 1
  }
  return undefined
}
