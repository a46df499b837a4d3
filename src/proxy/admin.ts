/**
 * The admin API on its own listener (docs/proxy.md "Admin API"). Every endpoint but `GET /healthz`
 * needs `Authorization: Bearer <token>` when a token is configured, compared in constant time;
 * `admin.metricsAuth: false` opens `/metrics` for Prometheus scrapes. Bad requests get 400 with a
 * reason, never a crash.
 */
import {createHash, timingSafeEqual} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

import {ConfigError, messageOf} from '../errors.js'
import type {MetricsView} from './metrics.js'
import type {ProxyMetrics} from './metrics.js'
import type {ProxyState, ServiceState} from './state.js'
import type {VersionWindowStats} from './traffic-stats.js'

/** `GET /api/services/{service}/stats` response. */
export interface ServiceStats {
  service: string
  /** Start of the window actually counted (whole seconds; later than asked when clamped). */
  sinceMs: number
  untilMs: number
  /** True when `since` was older than the retention and the window was shortened. */
  clamped: boolean
  retentionSeconds: number
  versions: Record<string, VersionWindowStats>
}

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

/** Admin listener settings. */
export interface AdminOptions {
  readonly token: string | undefined
  readonly metricsAuth: boolean
}

const MAX_BODY_BYTES = 64 * 1024

export function createAdminServer(control: ControlPlane, metrics: ProxyMetrics, options: AdminOptions): Server {
  const expected = options.token === undefined || options.token === '' ? undefined : createHash('sha256').update(options.token).digest()
  const authorized = (req: IncomingMessage): boolean => {
    if (expected === undefined) return true
    const header = req.headers.authorization ?? ''
    const presented = header.startsWith('Bearer ') ? header.slice(7) : ''
    // Hash both sides so the comparison has a fixed length and takes constant time.
    return timingSafeEqual(createHash('sha256').update(presented).digest(), expected)
  }

  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => sendJson(res, 500, {error: `admin request failed: ${messageOf(error)}`}))
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin')
    const method = req.method ?? 'GET'
    const path = url.pathname
    if (path === '/healthz' && (method === 'GET' || method === 'HEAD')) return sendText(res, 200, 'ok\n')
    const isMetrics = path === '/metrics'
    if (!(isMetrics && !options.metricsAuth) && !authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="canary-proxy"')
      return sendJson(res, 401, {error: 'missing or wrong bearer token', hint: 'Send Authorization: Bearer <admin.token>.'})
    }
    if (isMetrics && method === 'GET') {
      const text = await metrics.render(await control.metricsView())
      res.writeHead(200, {'content-type': metrics.contentType})
      res.end(text)
      return
    }
    if (path === '/api/state' && method === 'GET') return sendJson(res, 200, await control.state())
    if (path === '/api/reload' && method === 'POST') {
      try {
        return sendJson(res, 200, await control.reload())
      } catch (error) {
        if (error instanceof ConfigError) return sendJson(res, 400, {error: error.message, problems: error.problems})
        throw error
      }
    }
    const serviceMatch = /^\/api\/services\/([^/]+)\/(weights|stats)$/.exec(path)
    if (serviceMatch !== null) {
      const service = decodeURIComponent(serviceMatch[1] ?? '')
      try {
        if (serviceMatch[2] === 'weights' && method === 'PUT') {
          const body = await readBody(req)
          let weights: unknown
          try {
            weights = JSON.parse(body)
          } catch (error) {
            throw new AdminRequestError(400, `bad JSON: ${messageOf(error)}`)
          }
          return sendJson(res, 200, await control.setWeights(service, weights))
        }
        if (serviceMatch[2] === 'stats' && method === 'GET') {
          const since = url.searchParams.get('since')
          if (since === null || !/^\d+$/.test(since)) throw new AdminRequestError(400, 'query parameter since=<epoch milliseconds> is required')
          return sendJson(res, 200, await control.stats(service, Number(since)))
        }
      } catch (error) {
        if (error instanceof AdminRequestError) return sendJson(res, error.status, {error: error.message})
        throw error
      }
      return sendJson(res, 405, {error: `${method} is not allowed on ${path}`})
    }
    return sendJson(res, 404, {error: `no admin endpoint ${method} ${path}`, hint: 'Endpoints: GET /healthz, GET /metrics, GET /api/state, PUT /api/services/{service}/weights, GET /api/services/{service}/stats?since=, POST /api/reload.'})
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new AdminRequestError(413, `body larger than ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
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
