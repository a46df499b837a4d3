/**
 * The TLS data-plane listener: HTTP/2 and HTTP/1.1 on one port, chosen by ALPN (node:http2
 * `createSecureServer` with `allowHTTP1`), or HTTP/1.1 only (`tls.http2: false`). SNI picks a
 * certificate through a swappable CertificateStore, so a reload (a rotated certificate) changes
 * what new handshakes get while open connections keep theirs. Also the plain-HTTP listener that
 * redirects to https (`tls.redirect`).
 */
import {createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse} from 'node:http'
import {createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session} from 'node:http2'
import {createServer as createHttpsServer, type Server as HttpsServer} from 'node:https'
import type {Socket} from 'node:net'
import type {Duplex} from 'node:stream'
import type {SecureContext, SecureVersion, TLSSocket} from 'node:tls'

import {UsageError} from '../errors.js'
import {splitHostPort} from './address.js'
import type {ProxyConfig} from './config.js'
import {isHttp2} from './data-plane.js'
import {loadCertificateStore, type CertificateStore, type TlsSettings} from './tls.js'

/** Concurrent streams per HTTP/2 connection: nginx's http2_max_concurrent_streams default. */
const MAX_CONCURRENT_STREAMS = 128

/** What the listener hands each request and upgrade to; HTTP/2 requests arrive through Node's compatibility API. */
export interface ListenerHandlers {
  request(req: IncomingMessage, res: ServerResponse): void
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** HTTP/1.1 CONNECT (HTTP/2's is answered by Node). */
  connect(req: IncomingMessage, socket: Duplex): void
  clientError(error: NodeJS.ErrnoException, socket: Socket): void
  /** A request the listener refused itself, counted like the HTTP/1.1 parser's refusals. */
  refused(reason: 'header_too_large'): void
}

/**
 * Size of an HTTP/2 request's header list as RFC 7541 §4.1 counts it (name + value + 32 per
 * field). The limit advertised in SETTINGS binds a client only once it has acknowledged them, so
 * the first requests of a connection are checked here.
 */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0
  for (let i = 0; i < rawHeaders.length; i += 2) size += rawHeaders[i]!.length + (rawHeaders[i + 1]?.length ?? 0) + 32
  return size
}

/** Open HTTP/2 streams per session, to tell an idle session from one waiting for an upstream. */
const kOpenStreams = Symbol('openStreams')
type TrackedSession = ServerHttp2Session & {[kOpenStreams]?: number}

export class TlsListener {
  readonly server: Http2SecureServer | HttpsServer
  private store: CertificateStore
  private readonly sessions = new Set<TrackedSession>()
  /** Every TCP connection, handshaking ones included (Http2SecureServer has no closeAllConnections). */
  private readonly connections = new Set<Socket>()
  /** HTTP/1.1 connections that have not sent a request yet: Node's closeIdleConnections() skips them. */
  private readonly fresh = new Set<Socket>()

  constructor(config: ProxyConfig & {tls: TlsSettings & {http2: boolean}}, handlers: ListenerHandlers) {
    const tls = config.tls
    this.store = loadCertificateStore(tls, config.file)
    const t = config.timeouts
    const first = this.store.certificates[0]!
    const secure = {
      cert: first.cert,
      key: first.key,
      minVersion: tls.minVersion,
      // SNI: the store in place when the handshake starts answers; a reload swaps the store.
      SNICallback: (servername: string, done: (error: Error | null, context?: SecureContext) => void) => done(null, this.store.contextFor(servername)),
      // A client that never finishes the handshake is dropped like one that never sends its head.
      handshakeTimeout: t.clientHeadersMs,
    }
    // Node's compatibility API hands HTTP/2 requests over as objects shaped like HTTP/1.1's; the
    // data plane handles the differences (isHttp2()).
    const maxHeaderBytes = config.limits.maxHeaderBytes
    const onRequest = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      if (!isHttp2(req)) {
        this.fresh.delete(req.socket as Socket)
      } else if (headerListSize(req.rawHeaders) > maxHeaderBytes) {
        handlers.refused('header_too_large')
        req.resume()
        ;(res as Http2ServerResponse).writeHead(431, {'content-length': '0'}).end()
        return
      }
      handlers.request(req as IncomingMessage, res as ServerResponse)
    }
    if (tls.http2) {
      const server = createSecureServer({...secure, allowHTTP1: true, settings: {maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: config.limits.maxHeaderBytes}}, onRequest)
      // HTTP/1.1 over this server uses these http.Server settings (slowloris, idle keep-alive, head size).
      const http1 = server as unknown as {headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; maxHeaderSize: number; connectionsCheckingInterval: number}
      http1.headersTimeout = t.clientHeadersMs
      http1.requestTimeout = Math.max(t.clientHeadersMs, 300_000)
      http1.keepAliveTimeout = t.clientIdleMs
      http1.maxHeaderSize = config.limits.maxHeaderBytes
      http1.connectionsCheckingInterval = Math.min(1000, t.clientHeadersMs)
      server.on('session', (session: TrackedSession) => this.track(session, t.clientIdleMs))
      // Session errors (a peer's protocol error) end that session only.
      server.on('sessionError', () => undefined)
      this.server = server
    } else {
      this.server = createHttpsServer(
        {
          ...secure,
          headersTimeout: t.clientHeadersMs,
          requestTimeout: Math.max(t.clientHeadersMs, 300_000),
          keepAliveTimeout: t.clientIdleMs,
          maxHeaderSize: config.limits.maxHeaderBytes,
          connectionsCheckingInterval: Math.min(1000, t.clientHeadersMs),
        },
        onRequest,
      )
    }
    const server = this.server as HttpsServer
    server.on('connection', (socket: Socket) => {
      this.connections.add(socket)
      socket.once('close', () => this.connections.delete(socket))
    })
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') return
      this.fresh.add(socket)
      socket.once('close', () => this.fresh.delete(socket))
    })
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.fresh.delete(socket as Socket)
      handlers.upgrade(req, socket, head)
    })
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      this.fresh.delete(socket as Socket)
      handlers.connect(req, socket)
    })
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
      // A failed or stalled handshake (ERR_TLS_HANDSHAKE_TIMEOUT, ERR_SSL_*) has no HTTP to answer
      // in: an HTTP 400 written there would wait for a handshake that never comes.
      if (isTlsError(error)) socket.destroy()
      else handlers.clientError(error, socket)
    })
    server.on('tlsClientError', (_error: Error, socket: Socket) => socket.destroy())
  }

  /** The certificates new handshakes get. */
  get certificates(): CertificateStore {
    return this.store
  }

  /**
   * Makes new handshakes use `store` (from loadCertificateStore, which throws on a broken pair, so
   * a bad reload never gets here); open connections keep the certificate they negotiated.
   */
  use(store: CertificateStore, minVersion: SecureVersion): void {
    const first = store.certificates[0]!
    // The default context serves clients without SNI; the SNI callback reads the new store.
    this.server.setSecureContext({cert: first.cert, key: first.key, minVersion})
    this.store = store
  }

  /** An HTTP/2 session idle (no open stream) for `idleMs` is closed gracefully (GOAWAY). */
  private track(session: TrackedSession, idleMs: number): void {
    this.sessions.add(session)
    session[kOpenStreams] = 0
    session.on('stream', (stream) => {
      session[kOpenStreams] = (session[kOpenStreams] ?? 0) + 1
      stream.once('close', () => (session[kOpenStreams] = (session[kOpenStreams] ?? 1) - 1))
    })
    session.setTimeout(idleMs, () => {
      if (session[kOpenStreams] === 0) session.close()
    })
    session.once('close', () => this.sessions.delete(session))
  }

  /** Closes idle HTTP/1.1 connections, and asks every HTTP/2 session to finish its streams and close (GOAWAY). */
  closeIdleConnections(): void {
    ;(this.server as HttpsServer).closeIdleConnections()
    for (const socket of this.fresh) socket.destroy()
    for (const session of this.sessions) if (!session.closed) session.close()
  }

  closeAllConnections(): void {
    for (const session of this.sessions) session.destroy()
    for (const socket of this.connections) socket.destroy()
  }
}

function isTlsError(error: NodeJS.ErrnoException): boolean {
  const code = error.code ?? ''
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL')
}

/** True for a Host we will put in a Location: a DNS name, IPv4 or bracketed IPv6, optional port. */
const REDIRECT_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/** The `Location` for a plain-HTTP request, or undefined when its Host or target cannot be redirected safely. */
export function httpsLocation(host: string | undefined, target: string | undefined, httpsPort: number): string | undefined {
  if (host === undefined || !REDIRECT_HOST.test(host)) return undefined
  // Origin-form only: an absolute-form or `*` target would let the request choose where we point.
  if (target === undefined || !target.startsWith('/') || target.startsWith('//')) return undefined
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '')
  return `https://${name}${httpsPort === 443 ? '' : `:${httpsPort}`}${target}`
}

/**
 * The plain listener of `tls.redirect`: every request gets 308 to the same host and target on
 * https (308, not 301, so a POST stays a POST: RFC 9110 §15.4.9). It proxies nothing.
 */
export function createRedirectServer(config: ProxyConfig, httpsPort: () => number): HttpServer {
  const t = config.timeouts
  const server = createHttpServer(
    {headersTimeout: t.clientHeadersMs, requestTimeout: Math.max(t.clientHeadersMs, 60_000), keepAliveTimeout: t.clientIdleMs, maxHeaderSize: config.limits.maxHeaderBytes},
    (req, res) => {
      // The body is not needed; reading it off keeps the connection usable.
      req.resume()
      const location = httpsLocation(req.headers.host, req.url, httpsPort())
      if (location === undefined) {
        res.writeHead(400, {'content-type': 'text/plain; charset=utf-8', 'content-length': '12', connection: 'close'})
        res.end('bad request\n')
        return
      }
      res.writeHead(308, {location, 'content-length': '0'})
      res.end()
    },
  )
  server.on('clientError', (_error, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
    else socket.destroy()
  })
  return server
}

/** Files whose change should reload the config: certificates, keys and upstream CA bundles. */
export function tlsFiles(config: ProxyConfig): string[] {
  const files = new Set<string>()
  for (const pair of config.tls?.certificates ?? []) {
    files.add(pair.certFile)
    files.add(pair.keyFile)
  }
  for (const service of Object.values(config.services)) if (service.upstreamTls?.caFile !== undefined) files.add(service.upstreamTls.caFile)
  return [...files]
}

/** The running redirect listener of `tls.redirect`. */
export interface RedirectListener {
  readonly address: {readonly host: string; readonly port: number}
  close(): Promise<void>
}

/** Starts `tls.redirect` (if configured): 308 to https on `httpsPort` unless the config names another. */
export async function startRedirect(config: ProxyConfig, httpsPort: number): Promise<RedirectListener | undefined> {
  const redirect = config.tls?.redirect
  if (redirect === undefined) return undefined
  const {host, port} = splitHostPort(redirect.listen)
  const server = createRedirectServer(config, () => redirect.httpsPort ?? httpsPort)
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(new UsageError(`proxy redirect listener ${host}:${port}: listen failed: ${error.message}`, {cause: error, suggestions: ['Choose a free port in tls.redirect.listen.']}))
    server.once('error', onError)
    server.listen({host, port}, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const bound = server.address() as {address: string; port: number}
  return {
    address: {host: bound.address, port: bound.port},
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
