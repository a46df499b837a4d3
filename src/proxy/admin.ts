/**
 * The admin API on its own listener (docs/proxy.md "Admin API"). Every endpoint but `GET /healthz`
 * needs `Authorization: Bearer <token>` when a token is configured, compared in constant time;
 * `admin.metricsAuth: false` opens `/metrics` for Prometheus scrapes. Bad requests get 400 with a
 * reason, never a crash.
 */
import {createHash, timingSafeEqual} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

import {ConfigError, messageOf} from '../errors.js'
import {isLoopbackHost} from './address.js'
import type {MetricsView} from './metrics.js'
import type {ProxyMetrics} from './metrics.js'
import type {ProxyState, ServiceState} from './state.js'
import type {ServiceStats} from './traffic-stats.js'

/** A refused admin request: status and reason. */
export class AdminRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** What the admin API controls: one process or a cluster primary. */
export interface ControlPlane {
  state(): Promise<ProxyState>
  setWeights(service: string, weights: unknown): Promise<ServiceState>
  stats(service: string, sinceMs: number): Promise<ServiceStats>
  reload(): Promise<{generation: number}>
  metricsView(): Promise<MetricsView>
}

/** Who may call the admin API. */
export interface AdminOptions {
  readonly token?: string | undefined
  readonly metricsAuth: boolean
}

/** Largest request body the admin API reads (a weights update is a few dozen bytes). */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024
/** A `since` later than the proxy's clock by more than this is refused (clock skew allowance). */
export const MAX_SINCE_SKEW_MS = 5 * 60_000
/** Client timeouts of the admin listener (the data plane's `timeouts.client*`): a slow client must not hold it either. */
export interface AdminTimeouts {
  /** The request head must arrive within this (408 otherwise). */
  readonly clientHeadersMs: number
  /** The body may take this much longer than the head. */
  readonly clientBodyMs: number
  readonly clientIdleMs: number
}
const ENDPOINTS = 'Endpoints: GET /healthz, GET /metrics, GET /api/state, PUT /api/services/{service}/weights, GET /api/services/{service}/stats?since=, POST /api/reload.'

/**
 * The admin API's access settings, replaced on reload: a rotated token applies to the very next
 * request (connections kept alive with the old token are refused too), never after a restart.
 */
export class AdminAccess {
  private expected: Buffer | undefined
  private metricsOpen = false

  constructor(options: AdminOptions) {
    this.update(options)
  }

  update(options: AdminOptions): void {
    this.expected = options.token === undefined || options.token === '' ? undefined : createHash('sha256').update(options.token).digest()
    this.metricsOpen = !options.metricsAuth
  }

  /**
   * Without a token only a loopback Host is answered: a web page whose name an attacker re-points
   * at 127.0.0.1 (DNS rebinding) would otherwise reach the open admin API from the browser.
   */
  hostProblem(req: IncomingMessage): string | undefined {
    if (this.expected !== undefined) return undefined
    const host = req.headers.host ?? ''
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!
    if (isLoopbackHost(name.toLowerCase())) return undefined
    return `Host ${JSON.stringify(host.slice(0, 100))} is not a loopback name; without admin.token the admin API answers only Host localhost, 127.0.0.1 or [::1]`
  }

  allows(req: IncomingMessage, isMetrics: boolean): boolean {
    const expected = this.expected
    if (expected === undefined || (isMetrics && this.metricsOpen)) return true
    const header = req.headers.authorization ?? ''
    const presented = header.startsWith('Bearer ') ? header.slice(7) : ''
    // Hash both sides so the comparison has a fixed length and takes constant time.
    return timingSafeEqual(createHash('sha256').update(presented).digest(), expected)
  }
}

export function createAdminServer(control: ControlPlane, metrics: ProxyMetrics, access: AdminAccess, timeouts: AdminTimeouts): Server {
  const server = createServer(
    {
      headersTimeout: timeouts.clientHeadersMs,
      requestTimeout: timeouts.clientHeadersMs + timeouts.clientBodyMs,
      keepAliveTimeout: timeouts.clientIdleMs,
      maxHeaderSize: 16 * 1024,
      connectionsCheckingInterval: Math.min(1000, timeouts.clientHeadersMs),
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        if (error instanceof AdminRequestError) return refuse(req, res, error)
        sendJson(res, 500, {error: `admin request failed: ${messageOf(error)}`})
      })
    },
  )
  return server

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const {path, query} = splitTarget(req.url ?? '')
    if (path === '/healthz' && (method === 'GET' || method === 'HEAD')) return sendText(res, 200, 'ok\n')
    const hostProblem = access.hostProblem(req)
    if (hostProblem !== undefined) return sendJson(res, 403, {error: hostProblem, hint: 'Set admin.token to call the admin API through another name.'})
    const isMetrics = path === '/metrics'
    if (!access.allows(req, isMetrics)) {
      res.setHeader('www-authenticate', 'Bearer realm="canary-proxy"')
      return sendJson(res, 401, {error: 'missing or wrong bearer token', hint: 'Send Authorization: Bearer <admin.token>.'})
    }
    if (isMetrics && method === 'GET') {
      const text = await metrics.render(await control.metricsView())
      res.writeHead(200, {'content-type': metrics.contentType})
      res.end(text)
      return
    }
    if (path === '/api/state' && method === 'GET') {
      onlyParameters(query, [])
      return sendJson(res, 200, await control.state())
    }
    if (path === '/api/reload' && method === 'POST') {
      onlyParameters(query, [])
      try {
        return sendJson(res, 200, await control.reload())
      } catch (error) {
        if (error instanceof ConfigError) return sendJson(res, 400, {error: error.message, problems: error.problems})
        throw error
      }
    }
    const serviceMatch = /^\/api\/services\/([^/]+)\/(weights|stats)$/.exec(path)
    if (serviceMatch !== null) {
      const service = decodeSegment(serviceMatch[1] ?? '')
      if (serviceMatch[2] === 'weights' && method === 'PUT') {
        onlyParameters(query, [])
        const weights = await readJsonBody(req)
        return sendJson(res, 200, await control.setWeights(service, weights))
      }
      if (serviceMatch[2] === 'stats' && method === 'GET') {
        onlyParameters(query, ['since'])
        return sendJson(res, 200, await control.stats(service, sinceOf(query)))
      }
      return sendJson(res, 405, {error: `${method} is not allowed on ${path}`})
    }
    return sendJson(res, 404, {error: `no admin endpoint ${method} ${path}`, hint: ENDPOINTS})
  }
}

/** Answers a refused request; a body left unread (too large, wrong type) ends the connection. */
function refuse(req: IncomingMessage, res: ServerResponse, error: AdminRequestError): void {
  if (!req.complete) res.setHeader('connection', 'close')
  sendJson(res, error.status, {error: error.message})
}

/** The request target split into path and query; only origin form (`/path?query`) is accepted. */
function splitTarget(target: string): {path: string; query: URLSearchParams} {
  if (!target.startsWith('/') || target.startsWith('//')) throw new AdminRequestError(400, `request target ${JSON.stringify(target.slice(0, 100))} is not a path such as /api/state`)
  const q = target.indexOf('?')
  return {path: q === -1 ? target : target.slice(0, q), query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1))}
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new AdminRequestError(400, `malformed percent-escape in path segment ${JSON.stringify(segment.slice(0, 100))}; escape "%" as %25`)
  }
}

/** Refuses unknown and repeated query parameters, so a typo is an error rather than ignored. */
function onlyParameters(query: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>()
  for (const name of query.keys()) {
    if (!allowed.includes(name)) throw new AdminRequestError(400, `unknown query parameter ${JSON.stringify(name.slice(0, 100))}${allowed.length === 0 ? ' (this endpoint takes none)' : ` (allowed: ${allowed.join(', ')})`}`)
    if (seen.has(name)) throw new AdminRequestError(400, `query parameter ${name} given more than once`)
    seen.add(name)
  }
}

/** `since`: epoch milliseconds, a non-negative integer no later than now plus the skew allowance. */
function sinceOf(query: URLSearchParams, nowMs: number = Date.now()): number {
  const since = query.get('since')
  if (since === null) throw new AdminRequestError(400, 'query parameter since=<epoch milliseconds> is required')
  if (!/^\d{1,16}$/.test(since)) throw new AdminRequestError(400, `since=${JSON.stringify(since.slice(0, 100))} is not epoch milliseconds (a non-negative integer such as ${nowMs - 60_000})`)
  const sinceMs = Number(since)
  if (sinceMs > nowMs + MAX_SINCE_SKEW_MS) throw new AdminRequestError(400, `since=${since} is in the future (the proxy's clock reads ${nowMs}; up to ${MAX_SINCE_SKEW_MS} ms of skew is accepted)`)
  return sinceMs
}

/** Reads a JSON body: `application/json`, at most ADMIN_MAX_BODY_BYTES, valid UTF-8 and JSON. */
async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') throw new AdminRequestError(415, `content-type must be application/json, got ${JSON.stringify((req.headers['content-type'] ?? '(none)').slice(0, 100))}`)
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > ADMIN_MAX_BODY_BYTES) throw new AdminRequestError(413, `body of ${declared} bytes is larger than the limit of ${ADMIN_MAX_BODY_BYTES}`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > ADMIN_MAX_BODY_BYTES) throw new AdminRequestError(413, `body larger than the limit of ${ADMIN_MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', {fatal: true}).decode(Buffer.concat(chunks))
  } catch {
    throw new AdminRequestError(400, 'body is not valid UTF-8')
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new AdminRequestError(400, `bad JSON: ${messageOf(error).slice(0, 200)}`)
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
  res.end(text)
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text)})
  res.end(text)
}
