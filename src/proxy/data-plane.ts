/**
 * The request path. Order, in one place: validate and normalise the request
 * (request-target.ts: 400/501 before anything else) → route match on the normalised host and path → IP allow-list →
 * choose version (choose-version.ts: sticky, header, cookie, weights by default) → server (round robin, health-aware) → mirror
 * sample → read a small body first (request buffering) → wait for a connection of the upstream's
 * gate (bounded queue, timeout → 503) → forward with undici `Pool.dispatch` (the lean path
 * a benchmark of Node proxy designs measured: no per-request closures or promise chains; one Exchange
 * object per request is the handler).
 *
 * Slow clients (docs/proxy.md "Slow clients and the connection cap"): a body that stops arriving
 * for `timeouts.clientBodyMs` gets 408; a client that stops reading its response for
 * `timeouts.clientSendMs` is disconnected. Small bodies and responses are buffered (within
 * `limits.bufferTotalBytes` for the process) so a slow client holds no upstream connection. Both
 * timeouts are client-side outcomes: counted in `canary_proxy_client_errors_total` and never in a
 * version's stats, so slow clients cannot fail a canary.
 */
import type {IncomingMessage, ServerResponse} from 'node:http'
import type {Http2ServerRequest, Http2ServerResponse} from 'node:http2'
import {connect, isIP, type Socket} from 'node:net'
import {performance} from 'node:perf_hooks'
import type {Duplex} from 'node:stream'
import {connect as connectTls} from 'node:tls'

import type {Dispatcher} from 'undici'

import type {AccessLog} from './access-log.js'
import {chooseVersion} from './choose-version.js'
import {downstreamResponseHeaders, readCookie, upstreamRequestHeaders, type ForwardedFacts} from './headers.js'
import {clientAddress} from './ip-allow-list.js'
import {checkRequest, type RequestRefusal, type RequestTarget} from './request-target.js'
import {stripPathPrefix, type CompiledRoute} from './route-table.js'
import type {ProxyRuntime, ServiceRuntime, ServiceVersion, UpstreamServer} from './runtime.js'
import {CLIENT_CLOSED_REQUEST, isConnectError, isRequestFormError, isServerFailure, statusForError} from './status-for-error.js'
import type {RequestSeries, TrafficStats} from './traffic-stats.js'
import type {GateRefusal, GateWaiter, QueuedTicket, UpstreamGate} from './upstream-gate.js'

const kExchange = Symbol('exchange')
const kRefused = Symbol('refused')
type RefusableSocket = Socket & {[kRefused]?: boolean}

/**
 * True when the request on this socket was already refused with a response and the connection is
 * closing: a parse error Node raises afterwards on the rest of the bytes (the body of a request
 * with a bad Transfer-Encoding) is the same client error and gets no second response or count.
 */
export function wasRefused(socket: Socket): boolean {
  return (socket as RefusableSocket)[kRefused] === true
}
/** At most this many extra attempts after connection failures of a request without a body. */
const MAX_RETRIES = 2
const SHORT_BODY: Record<number, string> = {
  403: 'forbidden\n',
  404: 'no route\n',
  408: 'request body timeout\n',
  499: '',
  502: 'bad gateway\n',
  503: 'no healthy upstream\n',
  504: 'gateway timeout\n',
}

type SocketWithExchange = Socket & {[kExchange]?: Exchange}

/**
 * Memory shared by every exchange for request bodies read before forwarding and response bytes
 * held for slow readers (`limits.bufferTotalBytes`). When it is used up, requests stream and
 * responses apply backpressure at once instead: bounded memory whatever the number of clients.
 */
export class BufferBudget {
  used = 0
  constructor(public totalBytes: number) {}

  tryReserve(bytes: number): boolean {
    if (this.used + bytes > this.totalBytes) return false
    this.used += bytes
    return true
  }

  release(bytes: number): void {
    this.used -= bytes
  }
}

/** Everything the data plane needs besides the request. */
export interface DataPlaneContext {
  runtime: ProxyRuntime
  readonly stats: TrafficStats
  accessLog: AccessLog | undefined
  trustedProxyHops: number
  localPort: string
  /** `https` on a TLS listener (X-Forwarded-Proto), else `http`. */
  readonly proto: 'http' | 'https'
  /** Open Upgrade tunnels (client side), closed when the proxy stops. */
  readonly tunnels: Set<Duplex>
  readonly buffers: BufferBudget
}

/** One proxied request; it is its own undici dispatch handler, so no closures are created per request. */
class Exchange implements Dispatcher.DispatchHandler, GateWaiter {
  abortUpstream: ((reason?: Error) => void) | undefined = undefined
  resumeUpstream: (() => void) | undefined = undefined
  clientGone = false
  done = false
  status = 0
  bytes = 0
  /** Content-Length of the upstream response, or -1. */
  expectedBytes = -1
  ended = false
  retries = 0
  version: ServiceVersion | undefined = undefined
  server: UpstreamServer | undefined = undefined
  /** The sticky cookie value the client sent (the Set-Cookie is decided once the version is final). */
  stickyValue: string | undefined = undefined
  body: IncomingMessage | Buffer | null = null
  headers: string[] = []
  path = ''
  /** The gate whose connection this exchange holds, until undici is done with the request. */
  holding: UpstreamGate | undefined = undefined
  /** Set while waiting in a gate's queue. */
  ticket: QueuedTicket | undefined = undefined
  /** True while the body is read into memory before forwarding. */
  collecting = false
  /** Budget bytes held for the buffered request body (released when the exchange finishes). */
  requestReserved = 0
  /** Budget bytes held for response data beyond what the client socket took (released on drain or close). */
  responseReserved = 0
  /** True while the upstream is paused because the client does not read. */
  paused = false
  /** The slow-client timer: 'body' while the request body is read, 'send' while the client does not read. */
  watchdog: NodeJS.Timeout | undefined = undefined
  watchKind: 'body' | 'send' | undefined = undefined
  /** Progress mark of the watched direction: socket bytes read, or bytes still waiting to be sent. */
  watchMark = 0
  drainHook: (() => void) | undefined = undefined
  closeHooked = false

  constructor(
    readonly plane: DataPlaneContext,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly startMs: number,
    readonly client: string,
    readonly route: CompiledRoute,
    readonly service: ServiceRuntime,
  ) {}

  /** Forwards through the server's gate: now, after a wait in its queue, or 503. */
  dispatch(): void {
    this.abortUpstream = undefined
    this.ticket = this.server!.gate.enter(this)
  }

  admitted(gate: UpstreamGate): void {
    this.ticket = undefined
    if (this.done || this.clientGone) {
      gate.leave()
      this.finish(CLIENT_CLOSED_REQUEST)
      return
    }
    this.holding = gate
    const server = this.server!
    server.pool.dispatch({origin: server.origin, path: server.basePath + this.path, method: this.req.method as Dispatcher.HttpMethod, headers: this.headers, body: this.body}, this)
  }

  /** The upstream's connections stayed busy: 503 at once (queue full) or after timeouts.upstreamQueueMs. */
  refused(reason: GateRefusal): void {
    this.ticket = undefined
    this.plane.stats.countUpstreamRefusal(this.server!.origin, reason)
    respond(this.res, 503, undefined, 'upstream busy\n')
    // Not the version's failure: a few clients holding every connection must not fail a canary.
    this.finish(503, true)
  }

  /** undici is done with the request (completed, failed or aborted): its connection is free. */
  private releaseGate(): void {
    const gate = this.holding
    if (gate === undefined) return
    this.holding = undefined
    gate.leave()
  }

  /** Starts (or restarts) the slow-client timer for one direction. */
  watch(kind: 'body' | 'send'): void {
    this.watchKind = kind
    this.watchMark = kind === 'body' ? this.req.socket.bytesRead : this.res.writableLength
    const config = this.plane.runtime.config.timeouts
    const ms = kind === 'body' ? config.clientBodyMs : config.clientSendMs
    if (this.watchdog === undefined) this.watchdog = setTimeout(() => this.onWatchdog(), ms)
    else {
      clearTimeout(this.watchdog)
      this.watchdog = setTimeout(() => this.onWatchdog(), ms)
    }
  }

  unwatch(): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog)
    this.watchdog = undefined
    this.watchKind = undefined
  }

  /** The timer fired: progress since the last mark restarts it; none is a client timeout. */
  private onWatchdog(): void {
    const watchdog = this.watchdog
    if (watchdog === undefined) return
    if (this.watchKind === 'body') {
      const req = this.req
      if (req.complete || this.done) return this.unwatch()
      const read = req.socket.bytesRead
      // A body that is not being consumed (waiting for a connection, or the upstream applies
      // backpressure) is not the client's delay.
      const consuming = this.collecting || (this.holding !== undefined && req.readableFlowing === true)
      if (read !== this.watchMark || !consuming) {
        this.watchMark = read
        watchdog.refresh()
        return
      }
    } else {
      const pending = this.res.writableLength
      if (pending === 0 || this.res.destroyed) return this.unwatch()
      if (pending < this.watchMark) {
        this.watchMark = pending
        watchdog.refresh()
        return
      }
    }
    this.clientTimedOut(this.watchKind ?? 'send')
  }

  /**
   * A client too slow to send its body (408) or to read its response (disconnected). Counted as a
   * client error, recorded without a version, and the upstream request is aborted so its
   * connection is freed.
   */
  private clientTimedOut(kind: 'body' | 'send'): void {
    this.unwatch()
    this.plane.stats.countClientError(kind === 'body' ? 'body_timeout' : 'send_timeout')
    if (this.done) {
      // The upstream already answered in full; only the client's tail is stuck.
      this.res.destroy()
      return
    }
    this.clientGone = true
    if (kind === 'body' && !this.res.headersSent) {
      this.res.setHeader('connection', 'close')
      respond(this.res, 408)
    } else {
      this.res.destroy()
    }
    this.ticket?.cancel()
    this.ticket = undefined
    this.finish(kind === 'body' ? 408 : CLIENT_CLOSED_REQUEST, true)
    this.abortUpstream?.(new Error(`client ${kind === 'body' ? 'sent no body' : 'read nothing'} for too long`))
  }

  /** Response data waiting in memory reached the socket: release its budget, resume a paused upstream. */
  private onDrain(): void {
    this.drainHook = undefined
    if (this.responseReserved !== 0) {
      this.plane.buffers.release(this.responseReserved)
      this.responseReserved = 0
    }
    if (this.paused) {
      this.paused = false
      if (this.watchKind === 'send') this.unwatch()
      this.resumeUpstream?.()
    }
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abortUpstream = abort
    if (this.clientGone) abort(new Error('client closed the connection'))
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.clientGone) return false
    this.status = statusCode
    this.resumeUpstream = resume
    const version = this.version!
    const setCookie = version.setCookie !== undefined && this.stickyValue !== version.stickyValue ? version.setCookie : undefined
    const headers = downstreamResponseHeaders(rawHeaders, this.route.responseHeaders, setCookie)
    const length = headers['content-length']
    if (typeof length === 'string') this.expectedBytes = Number(length)
    // HTTP/2 has no reason phrase (Node warns when given one).
    if (statusText === '' || isHttp2(this.req)) this.res.writeHead(statusCode, headers)
    else this.res.writeHead(statusCode, statusText, headers)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.bytes === 0 && chunk.length === this.expectedBytes) {
      // The whole body in one chunk: head and body leave in one write, and end() adds none.
      this.bytes = chunk.length
      this.ended = true
      this.res.end(chunk)
      return true
    }
    this.bytes += chunk.length
    if (this.res.write(chunk)) return true
    // The client reads slower than the upstream sends. Keep reading into memory up to
    // limits.responseBufferBytes (within the shared budget), so a slow reader of a modest response
    // frees its upstream connection; beyond that, pause the upstream (backpressure) until the client
    // drains, for at most timeouts.clientSendMs without progress.
    if (this.drainHook === undefined) {
      const hook = (this.drainHook = () => this.onDrain())
      this.res.once('drain', hook)
      if (!this.closeHooked) {
        this.closeHooked = true
        this.res.once('close', () => this.onDrain())
      }
    }
    if (this.res.writableLength <= this.plane.runtime.config.limits.responseBufferBytes && this.plane.buffers.tryReserve(chunk.length)) {
      this.responseReserved += chunk.length
      return true
    }
    this.paused = true
    this.watch('send')
    return false
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.releaseGate()
    if (this.done) return
    if (!this.ended) {
      // HTTP/2 clients get the upstream's trailers (gRPC-style status); HTTP/1.1 ones would need
      // `TE: trailers` and a declared `Trailer` header, so they do not.
      if (trailers !== null && trailers.length > 0 && isHttp2(this.req)) (this.res as unknown as Http2ServerResponse).addTrailers(downstreamResponseHeaders(trailers, undefined, undefined))
      this.res.end()
    }
    this.server!.markSucceeded()
    this.finish(this.status)
    if (this.res.writableLength > 0 && !this.res.destroyed) {
      // The upstream is done and its connection free; the client still has to take the tail.
      this.watch('send')
      this.res.once('finish', () => this.unwatch())
    }
  }

  onError(error: Error): void {
    this.releaseGate()
    if (this.done) return
    // A client that goes away mid-body makes the upstream request fail with the body stream's
    // error (ECONNRESET "aborted"), possibly before the socket's 'close': still the client's doing.
    if (this.clientGone || clientBroke(this.req)) {
      this.clientGone = true
      if (this.status !== 0) this.res.destroy()
      this.finish(CLIENT_CLOSED_REQUEST)
      return
    }
    if (this.status === 0 && isRequestFormError(error)) {
      // The proxy could not form the upstream request from what the client sent: the client's error, not the version's.
      refuseLocally(this.plane, this.req, this.res, this.startMs, this.client, {status: 400, reason: 'the request could not be forwarded as sent'}, this.route.name, this.service.name)
      this.done = true
      return
    }
    const server = this.server
    if (server !== undefined && isServerFailure(error)) server.markFailed(isConnectError(error))
    if (this.status === 0) {
      // Nothing was sent to the client yet. Retry on another server when the request can be
      // replayed: its body is absent or buffered (a streamed body may be half consumed), and
      // either the connection was never made or the method is idempotent.
      const replayable = this.body === null || Buffer.isBuffer(this.body)
      const safe = isConnectError(error) || this.req.method === 'GET' || this.req.method === 'HEAD'
      if (replayable && safe && isServerFailure(error) && this.retries < MAX_RETRIES && this.pickRetryTarget() !== undefined) {
        this.retries++
        this.plane.stats.retries++
        this.dispatch()
        return
      }
      const status = statusForError(error, false)
      respond(this.res, status)
      this.finish(status)
      return
    }
    // The response broke after its head was sent: cut the client connection so it sees the failure.
    this.res.destroy(error)
    this.finish(502)
  }

  private pickRetryTarget(): UpstreamServer | undefined {
    let server = this.version?.nextServer()
    if (server === undefined) {
      const version = this.service.pickByWeight()
      if (version === undefined) return undefined
      this.version = version
      server = version.nextServer()
    }
    this.server = server
    return server
  }

  /**
   * Records the outcome once. `withoutVersion`: an outcome the version is not responsible for (a
   * slow-client timeout, a full connection queue); the access log still names the version.
   */
  finish(status: number, withoutVersion = false): void {
    if (this.done) return
    this.done = true
    if (this.watchKind === 'body') this.unwatch()
    if (this.requestReserved !== 0) {
      this.plane.buffers.release(this.requestReserved)
      this.requestReserved = 0
    }
    const plane = this.plane
    const endMs = performance.now()
    const durationMs = endMs - this.startMs
    const nowMs = Date.now()
    const version = this.version
    // A client abort is not the version's answer (docs/proxy.md "What counts against a version");
    // nor is a slow-client timeout or a full connection queue (see `withoutVersion`).
    const aborted = status === CLIENT_CLOSED_REQUEST && !withoutVersion
    if (aborted && version !== undefined) plane.stats.countClientAbort(this.service.name, version.name, nowMs)
    plane.stats.seriesFor(this.route.name, this.service.name, aborted || withoutVersion ? '' : (version?.name ?? '')).record(status, durationMs / 1000, nowMs)
    plane.accessLog?.log({
      timeMs: nowMs,
      client: this.client,
      method: this.req.method ?? '',
      host: authorityOf(this.req) ?? '',
      path: this.req.url ?? '',
      status,
      durationMs,
      route: this.route.name,
      service: this.service.name,
      version: version?.name ?? '',
      upstream: this.server?.url ?? '',
      bytes: this.bytes,
      retries: this.retries,
    })
  }
}

/**
 * True when the client cut its request body short. Node destroys the request with its own
 * ECONNRESET "aborted" error then; undici, when the upstream fails, destroys the same stream with
 * the upstream's error, so the first error recorded on the request tells the two apart.
 */
function clientBroke(req: IncomingMessage): boolean {
  const errored = req.errored as NodeJS.ErrnoException | null
  return errored !== null && errored.code === 'ECONNRESET' && errored.message === 'aborted'
}

/** One 'close' listener per client connection (not per request): an HTTP/1.1 client aborts by closing it. */
function onClientSocketClose(this: SocketWithExchange): void {
  const exchange = this[kExchange]
  if (exchange !== undefined) onClientGone(exchange)
}

/** The client went away (connection closed, or its HTTP/2 stream reset) before the exchange finished. */
function onClientGone(exchange: Exchange): void {
  if (exchange.done) return
  exchange.clientGone = true
  exchange.unwatch()
  if (exchange.ticket !== undefined) {
    exchange.ticket.cancel()
    exchange.ticket = undefined
    exchange.finish(CLIENT_CLOSED_REQUEST)
  } else if (exchange.abortUpstream !== undefined) exchange.abortUpstream(new Error('client closed the connection'))
  else exchange.finish(CLIENT_CLOSED_REQUEST)
}

function respond(res: ServerResponse, status: number, extraHeaders?: readonly [string, string][], text?: string): void {
  if (res.headersSent || res.destroyed) return
  const body = text ?? SHORT_BODY[status] ?? ''
  res.statusCode = status
  res.setHeader('content-type', 'text/plain; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  if (extraHeaders !== undefined) for (const [k, v] of extraHeaders) res.setHeader(k, v)
  res.end(body)
}

/** Records and logs a request the proxy answered itself before choosing a version (404, 403, 503). */
function answerLocally(plane: DataPlaneContext, req: IncomingMessage, res: ServerResponse, startMs: number, client: string, status: number, route: string, service: string): void {
  respond(res, status)
  recordLocal(plane, req, startMs, client, status, route, service)
}

/**
 * Refuses a malformed request (400) or an unsupported one (501) with the reason in the body, and
 * closes the connection: counted as a client error and under version "", never as a version's answer.
 */
function refuseLocally(plane: DataPlaneContext, req: IncomingMessage, res: ServerResponse, startMs: number, client: string, refusal: RequestRefusal, route: string, service: string): void {
  if (!res.headersSent && !res.destroyed) {
    const body = `${refusal.status === 501 ? 'not implemented' : 'bad request'}: ${refusal.reason}\n`
    if (isHttp2(req)) {
      // HTTP/2 refuses one stream; the connection and its other streams go on (and it has no Connection header).
      res.writeHead(refusal.status, {'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body)})
    } else {
      res.shouldKeepAlive = false
      res.writeHead(refusal.status, {'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close'})
      ;(req.socket as RefusableSocket)[kRefused] = true
    }
    res.end(body)
  }
  plane.stats.countClientError(refusal.status === 501 ? 'not_implemented' : 'bad_request')
  recordLocal(plane, req, startMs, client, refusal.status, route, service)
}

function recordLocal(plane: DataPlaneContext, req: IncomingMessage, startMs: number, client: string, status: number, route: string, service: string): void {
  const nowMs = Date.now()
  const durationMs = performance.now() - startMs
  plane.stats.seriesFor(route, service, '').record(status, durationMs / 1000, nowMs)
  plane.accessLog?.log({timeMs: nowMs, client, method: req.method ?? '', host: authorityOf(req) ?? '', path: req.url ?? '', status, durationMs, route, service, version: '', upstream: '', bytes: 0, retries: 0})
}

/** The request's authority: Host, or HTTP/2's `:authority` (RFC 9113 §8.3.1) when it has no Host. */
function authorityOf(req: IncomingMessage): string | undefined {
  const headers = req.headers
  return headers.host ?? (headers[':authority'] as string | undefined)
}

/**
 * True for a request that came over HTTP/2 (Node's compatibility API; it has a stream). Not
 * `httpVersionMajor === 2`: the HTTP/1.1 parser accepts a request line ending in `HTTP/2.0`.
 */
export function isHttp2(req: IncomingMessage | Http2ServerRequest): boolean {
  return (req as {stream?: unknown}).stream !== undefined
}

/**
 * An HTTP/2 request's header list as checkRequest reads HTTP/1.1's: pseudo-headers dropped and
 * `:authority` as Host (RFC 9113 §8.3.1). A Host that repeats it is the same header; one that
 * names another authority stays, so the check refuses two Hosts (400) rather than route on one
 * while the upstream trusts the other.
 */
function http2HeadersAsHttp1(raw: readonly string[]): string[] {
  const out: string[] = []
  let authority: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name === ':authority') authority = raw[i + 1]
    else if (name.charCodeAt(0) !== 58) out.push(name, raw[i + 1] ?? '')
  }
  if (authority !== undefined) {
    let host: string | undefined
    for (let i = 0; i < out.length; i += 2) if (out[i]!.toLowerCase() === 'host') host = out[i + 1]
    if (host === undefined || host.toLowerCase() !== authority.toLowerCase()) out.push('host', authority)
  }
  return out
}

function hasBody(req: IncomingMessage): boolean {
  // An HTTP/2 request without a body ends its stream with the headers; one with a body need not declare its length.
  if (isHttp2(req)) return !(req as unknown as Http2ServerRequest).stream.endAfterHeaders
  const length = req.headers['content-length']
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
}

/** Route, allow-list and version choice shared by HTTP requests and upgrades. */
interface Placement {
  route: CompiledRoute
  service: ServiceRuntime
  version: ServiceVersion
  server: UpstreamServer
  sticky: string | undefined
}

/** A request answered before a version was chosen: the status, and the route when one matched. */
interface Unplaced {
  status: 403 | 404 | 503
  route: CompiledRoute | undefined
}

function place(plane: DataPlaneContext, req: IncomingMessage, client: string, target: RequestTarget): Placement | Unplaced {
  const runtime = plane.runtime
  const route = runtime.routes.match(target.host, target.path, req.method ?? 'GET', req.headers)
  if (route === undefined) return {status: 404, route}
  if (route.allowList !== undefined && !route.allowList.allows(client)) return {status: 403, route}
  const service = runtime.services.get(route.service)!
  const headers = req.headers
  const cookieHeader = headers.cookie
  const headerValue = service.headerName === undefined ? undefined : headers[service.headerName]
  const sticky = service.stickyCookieName === undefined ? undefined : readCookie(cookieHeader, service.stickyCookieName)
  const choice = chooseVersion(
    {
      header: typeof headerValue === 'string' ? headerValue : undefined,
      cookie: service.cookieName === undefined ? undefined : readCookie(cookieHeader, service.cookieName),
      sticky,
    },
    service,
  )
  if (choice === undefined) return {status: 503, route}
  let version = choice.version
  let server = version.nextServer()
  if (server === undefined) {
    // The version went unhealthy between the check and the pick: fall back to weights once.
    const fallback = service.pickByWeight()
    server = fallback?.nextServer()
    if (fallback === undefined || server === undefined) return {status: 503, route}
    version = fallback
  }
  return {route, service, version, server, sticky}
}

/** The client's address: the peer, or from X-Forwarded-For only when trusted hops are configured. */
function clientOf(plane: DataPlaneContext, req: IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? ''
  if (plane.trustedProxyHops === 0) return peer
  const forwardedFor = req.headers['x-forwarded-for']
  return clientAddress(peer, typeof forwardedFor === 'string' ? forwardedFor : undefined, plane.trustedProxyHops)
}

/** What the X-Forwarded-* headers say about a request; the same for forwarded requests and upgrades. */
function forwardedFacts(plane: DataPlaneContext, req: IncomingMessage, client: string): ForwardedFacts {
  return {peer: req.socket.remoteAddress ?? '', clientAddress: client, proto: plane.proto, localPort: plane.localPort, trustIncoming: plane.trustedProxyHops > 0}
}

/** Handles one HTTP request. */
export function handleRequest(plane: DataPlaneContext, req: IncomingMessage, res: ServerResponse): void {
  const startMs = performance.now()
  const client = clientOf(plane, req)
  const check = checkRequest({method: req.method ?? '', url: req.url ?? '', rawHeaders: isHttp2(req) ? http2HeadersAsHttp1(req.rawHeaders) : req.rawHeaders})
  if (!check.ok) {
    refuseLocally(plane, req, res, startMs, client, check, '', '')
    req.resume()
    return
  }
  const target = check.target
  // Every matcher (a route's header rule on Host included) and the upstream see the host that is routed on.
  if (target.authority !== undefined) req.headers.host = target.authority
  const placement = place(plane, req, client, target)
  if (!('version' in placement)) {
    answerLocally(plane, req, res, startMs, client, placement.status, placement.route?.name ?? '', placement.route?.service ?? '')
    req.resume()
    return
  }
  const {route, service} = placement
  const exchange = new Exchange(plane, req, res, startMs, client, route, service)
  exchange.version = placement.version
  exchange.server = placement.server
  exchange.stickyValue = placement.sticky
  exchange.path = forwardPath(route, target)
  exchange.headers = upstreamRequestHeaders(req.headers, forwardedFacts(plane, req, client), route.requestHeaders, false)
  if (isHttp2(req)) {
    // Many HTTP/2 requests share one connection; a client aborts one by resetting its stream.
    ;(req as unknown as Http2ServerRequest).stream.once('close', () => onClientGone(exchange))
  } else {
    const socket = req.socket as SocketWithExchange
    if (!(kExchange in socket)) socket.on('close', onClientSocketClose)
    socket[kExchange] = exchange
  }

  const mirror = service.mirror
  const sampled = mirror !== undefined && mirror.sample()
  if (!hasBody(req)) {
    if (sampled) sendMirror(plane, service, exchange, null)
    exchange.body = null
    exchange.dispatch()
    return
  }
  const length = req.headers['transfer-encoding'] === undefined ? Number(req.headers['content-length']) : Infinity
  // Small bodies are read before a connection is taken, so a slow sender holds none (nginx's
  // request buffering); a mirrored body is read first so both copies can be sent (docs/proxy.md
  // "Mirroring"). Larger, chunked, or over-budget bodies stream under the body timeout.
  const mirrorWants = sampled && length <= mirror.maxBodyBytes
  if ((length <= plane.runtime.config.limits.requestBufferBytes || mirrorWants) && plane.buffers.tryReserve(length)) {
    exchange.requestReserved = length
    collectBody(req, exchange, service, mirrorWants)
    return
  }
  if (sampled) plane.stats.mirrorFor(service.name, mirror.version.name).skipped++
  exchange.body = req
  exchange.watch('body')
  exchange.dispatch()
}

/** The normalised origin-form target sent upstream: exactly the path that was matched, minus a stripped prefix. */
function forwardPath(route: CompiledRoute, target: RequestTarget): string {
  const url = target.path + target.query
  return route.stripPrefix === undefined ? url : stripPathPrefix(url, route.stripPrefix)
}

function collectBody(req: IncomingMessage, exchange: Exchange, service: ServiceRuntime, mirrored: boolean): void {
  const chunks: Buffer[] = []
  exchange.collecting = true
  exchange.watch('body')
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    exchange.collecting = false
    if (exchange.done || exchange.clientGone) return
    exchange.unwatch()
    const body = Buffer.concat(chunks)
    exchange.body = body
    if (mirrored) sendMirror(exchange.plane, service, exchange, body)
    exchange.dispatch()
  })
}

/**
 * Fire-and-forget copy to the mirror version: own timeouts, response discarded, failures counted,
 * never thrown. It takes a connection only when one is free (never waits in the gate's queue), so
 * a slow mirror cannot build an unbounded backlog.
 */
function sendMirror(plane: DataPlaneContext, service: ServiceRuntime, exchange: Exchange, body: Buffer | null): void {
  const mirror = service.mirror!
  const counts = plane.stats.mirrorFor(service.name, mirror.version.name)
  const server = mirror.version.nextServer()
  if (server === undefined || !server.gate.tryEnter()) {
    counts.failures++
    return
  }
  counts.requests++
  const gate = server.gate
  server.pool
    .request({
      path: server.basePath + exchange.path,
      method: exchange.req.method as Dispatcher.HttpMethod,
      headers: exchange.headers,
      body,
      headersTimeout: mirror.timeoutMs,
      bodyTimeout: mirror.timeoutMs,
      signal: AbortSignal.timeout(mirror.timeoutMs),
    })
    .then(
      (response) =>
        response.body
          .dump()
          .catch(() => undefined)
          .finally(() => gate.leave()),
      () => {
        counts.failures++
        gate.leave()
      },
    )
}

/**
 * WebSocket and other Upgrade requests: the same placement, then a raw TCP tunnel to the chosen
 * server carrying the rewritten request head; bytes flow both ways until either side closes.
 */
export function handleUpgrade(plane: DataPlaneContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const startMs = performance.now()
  // After 'upgrade' Node no longer watches the socket: an unhandled 'error' (EPIPE, reset) would crash the process.
  socket.on('error', () => socket.destroy())
  const client = clientOf(plane, req)
  const check = checkRequest({method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders})
  if (!check.ok) {
    refuseSocket(plane, socket, startMs, check)
    return
  }
  const target = check.target
  // Every matcher (a route's header rule on Host included) and the upstream see the host that is routed on.
  if (target.authority !== undefined) req.headers.host = target.authority
  const placement = place(plane, req, client, target)
  if (!('version' in placement)) {
    const status = placement.status
    socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 403 ? 'Forbidden' : 'Service Unavailable'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    plane.stats.seriesFor(placement.route?.name ?? '', placement.route?.service ?? '', '').record(status, (performance.now() - startMs) / 1000, Date.now())
    return
  }
  const {route, service, version, server} = placement
  const url = new URL(server.origin)
  const path = server.basePath + forwardPath(route, target)
  const headers = upstreamRequestHeaders(req.headers, forwardedFacts(plane, req, client), route.requestHeaders, true)
  let headText = `${req.method ?? 'GET'} ${path} HTTP/1.1\r\n`
  for (let i = 0; i < headers.length; i += 2) headText += `${headers[i]}: ${headers[i + 1]}\r\n`
  // An https:// upstream gets a TLS tunnel, verified like its pool's connections (issue #9 item 5).
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const secure = url.protocol === 'https:'
  const servername = server.tls?.servername ?? (isIP(host) === 0 ? host : undefined)
  const upstream: Socket = secure
    ? connectTls({host, port: Number(url.port || 443), rejectUnauthorized: true, ALPNProtocols: ['http/1.1'], ...(server.tls?.ca === undefined ? {} : {ca: server.tls.ca}), ...(servername === undefined ? {} : {servername})})
    : connect({host, port: Number(url.port || 80)})
  const timeouts = plane.runtime.config.timeouts
  const series = plane.stats.seriesFor(route.name, service.name, version.name)
  let recorded = false
  const record = (status: number) => {
    if (recorded) return
    recorded = true
    series.record(status, (performance.now() - startMs) / 1000, Date.now())
  }
  let failed = false
  const fail = (status: 502 | 504) => {
    failed = true
    record(status)
    socket.end(`HTTP/1.1 ${status} ${status === 502 ? 'Bad Gateway' : 'Gateway Timeout'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    upstream.destroy()
  }
  // The same upstream timeouts as forwarded requests: connecting (and the TLS handshake) within
  // connectMs (502, the server is unreachable), then the upstream's answer to the upgrade within
  // responseHeadersMs (504, the server stays in). Once bytes flow, the tunnel has no timeout
  // (WebSockets may idle). One listener for both phases: setTimeout(ms, fn) adds a listener each call.
  let connected = false
  upstream.setTimeout(timeouts.connectMs)
  upstream.on('timeout', () => {
    if (connected) return fail(504)
    server.markFailed(true)
    fail(502)
  })
  plane.tunnels.add(socket)
  socket.once('close', () => plane.tunnels.delete(socket))
  upstream.once(secure ? 'secureConnect' : 'connect', () => {
    connected = true
    upstream.setTimeout(timeouts.responseHeadersMs)
    upstream.once('data', (chunk: Buffer) => {
      upstream.setTimeout(0)
      // The upstream's status line: 101, or its refusal of the upgrade.
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.toString('latin1', 0, 16))
      record(status === null ? 502 : Number(status[1]))
    })
    upstream.write(`${headText}\r\n`)
    if (head.length > 0) upstream.write(head)
    // pipe() carries backpressure both ways: a slow reader pauses the other side.
    upstream.pipe(socket)
    socket.pipe(upstream)
  })
  upstream.on('error', (error) => {
    if (failed) return
    if (!recorded) {
      if (isServerFailure(error)) server.markFailed(isConnectError(error))
      fail(502)
    } else {
      socket.destroy()
    }
  })
  socket.on('error', () => upstream.destroy())
  socket.on('close', () => upstream.destroy())
  // After fail() the client socket ends on its own once the error answer is written.
  upstream.on('close', () => {
    if (!failed) socket.destroy()
  })
}

/** Answers a refused request on a raw socket (Upgrade and CONNECT requests have no ServerResponse). */
function refuseSocket(plane: DataPlaneContext, socket: Duplex, startMs: number, refusal: RequestRefusal): void {
  const body = `${refusal.status === 501 ? 'not implemented' : 'bad request'}: ${refusal.reason}\n`
  socket.end(`HTTP/1.1 ${refusal.status} ${refusal.status === 501 ? 'Not Implemented' : 'Bad Request'}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  plane.stats.countClientError(refusal.status === 501 ? 'not_implemented' : 'bad_request')
  plane.stats.seriesFor('', '', '').record(refusal.status, (performance.now() - startMs) / 1000, Date.now())
}

/** CONNECT: a reverse proxy does not open tunnels to arbitrary hosts (501, RFC 9110 §9.3.6). */
export function handleConnect(plane: DataPlaneContext, req: IncomingMessage, socket: Duplex): void {
  const startMs = performance.now()
  socket.on('error', () => socket.destroy())
  const check = checkRequest({method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders})
  refuseSocket(plane, socket, startMs, check.ok ? {status: 501, reason: 'CONNECT is not supported by a reverse proxy'} : check)
}

export type {RequestSeries}
