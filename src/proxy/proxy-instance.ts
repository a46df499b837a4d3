/**
 * One process's data plane: the HTTP listener, the compiled config generation, upstream pools,
 * health, counters and the access log. The control plane drives it directly in `startProxy`; each
 * cluster worker runs one and answers the primary's calls with it.
 */
import {createServer, type Server} from 'node:http'
import type {Server as NetServer, Socket} from 'node:net'

import {listenError} from '../errors.js'
import {AccessLog} from './access-log.js'
import {splitHostPort, type BoundAddress} from './address.js'
import type {ProxyConfig} from './config.js'
import type {DataPlane} from './control.js'
import {BufferBudget, handleConnect, handleRequest, handleUpgrade, wasRefused, type DataPlaneContext} from './data-plane.js'
import {HealthChecker} from './health-checker.js'
import {HealthRegistry, PoolRegistry, poolSettings, ProxyRuntime} from './runtime.js'
import {serviceState, servicesState, type ServiceState} from './state.js'
import {TrafficStats, type CounterSnapshot} from './traffic-stats.js'
import {TlsListener} from './tls-listener.js'
import {loadCertificateStore, type CertificateStore} from './tls.js'

export type {BoundAddress}

export class ProxyInstance implements DataPlane {
  /** One process serves. */
  readonly workers = 1
  readonly stats: TrafficStats
  private readonly pools: PoolRegistry
  private readonly health = new HealthRegistry()
  private readonly plane: DataPlaneContext
  /** The data-plane listener: plain HTTP/1.1, or TLS (HTTP/2 + HTTP/1.1) when the config has `tls`. */
  private readonly server: Server | NetServer
  private readonly tls: TlsListener | undefined
  private checker: HealthChecker
  /** The access-log settings in use, to reopen it only when they change. */
  private accessLogKey: string | undefined
  private closing: Promise<void> | undefined

  constructor(config: ProxyConfig, generation: number, retentionSeconds?: number) {
    this.stats = new TrafficStats(retentionSeconds)
    this.pools = new PoolRegistry(poolSettings(config))
    const runtime = new ProxyRuntime(config, generation, this.pools, this.health, this.stats)
    this.accessLogKey = accessLogKey(config)
    // The listener's protocol is fixed at start (a reload swaps certificates, not the protocol).
    this.tls =
      config.tls === undefined
        ? undefined
        : new TlsListener({...config, tls: config.tls}, {
            request: (req, res) => handleRequest(this.plane, req, res),
            upgrade: (req, socket, head) => handleUpgrade(this.plane, req, socket, head),
            connect: (req, socket) => handleConnect(this.plane, req, socket),
            clientError: (error, socket) => this.onClientError(error, socket),
            refused: (reason) => this.stats.countClientError(reason),
          })
    this.server = this.tls?.server ?? this.plainListener(config)
    this.plane = {
      runtime,
      stats: this.stats,
      accessLog: this.openAccessLog(config),
      trustedProxyHops: config.trustedProxyHops,
      localPort: String(splitHostPort(config.listen).port),
      // X-Forwarded-Proto tells the upstream what the client connected with: this listener's protocol.
      proto: this.tls === undefined ? 'http' : 'https',
      tunnels: new Set(),
      buffers: new BufferBudget(config.limits.bufferTotalBytes),
    }
    this.checker = new HealthChecker(runtime)
  }

  /** The plain HTTP/1.1 listener. */
  private plainListener(config: ProxyConfig): Server {
    const t = config.timeouts
    const server = createServer(
      {
        // Slowloris: the whole request head must arrive within clientHeadersMs; idle keep-alive
        // connections close after clientIdleMs. Oversized heads get 431 from Node's parser.
        headersTimeout: t.clientHeadersMs,
        requestTimeout: Math.max(t.clientHeadersMs, 300_000),
        keepAliveTimeout: t.clientIdleMs,
        maxHeaderSize: config.limits.maxHeaderBytes,
        connectionsCheckingInterval: Math.min(1000, t.clientHeadersMs),
      },
      (req, res) => handleRequest(this.plane, req, res),
    )
    server.on('upgrade', (req, socket, head) => handleUpgrade(this.plane, req, socket, head))
    server.on('connect', (req, socket) => handleConnect(this.plane, req, socket))
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket))
    return server
  }

  /** The certificates served now (undefined without TLS). */
  get certificates(): CertificateStore | undefined {
    return this.tls?.certificates
  }

  private openAccessLog(config: ProxyConfig): AccessLog | undefined {
    const settings = config.accessLog
    if (settings === undefined) return undefined
    return new AccessLog(settings.path, settings.maxBufferBytes, (lines) => (this.stats.accessLogDropped += lines))
  }

  get runtime(): ProxyRuntime {
    return this.plane.runtime
  }

  /** Listens on the config's address (or `listen` when given); resolves with the bound address. */
  listen(listen?: string): Promise<BoundAddress> {
    const {host, port} = splitHostPort(listen ?? this.plane.runtime.config.listen)
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(listenError(error, `${host}:${port}`, 'proxy listener'))
      this.server.once('error', onError)
      this.server.listen({host, port, backlog: 4096}, () => {
        this.server.off('error', onError)
        const address = this.server.address()
        if (address === null || typeof address === 'string') return reject(new Error('listener has no address'))
        this.plane.localPort = String(address.port)
        resolve({host: address.address, port: address.port})
      })
    })
  }

  /**
   * Swaps in a new config generation atomically (throws ConfigError before touching anything). The
   * control plane refuses adding or removing `tls` before it gets here.
   */
  apply(config: ProxyConfig, generation: number): void {
    // Certificates are read and checked first: a broken pair refuses the reload before anything changed.
    const certificates = config.tls === undefined ? undefined : loadCertificateStore(config.tls, config.file)
    const runtime = new ProxyRuntime(config, generation, this.pools, this.health, this.stats, this.plane.runtime)
    if (certificates !== undefined) this.tls?.use(certificates, config.tls!.minVersion)
    this.checker.stop()
    this.plane.runtime = runtime
    this.plane.trustedProxyHops = config.trustedProxyHops
    this.plane.buffers.totalBytes = config.limits.bufferTotalBytes
    this.checker = new HealthChecker(runtime)
    const key = accessLogKey(config)
    if (key !== this.accessLogKey) {
      this.plane.accessLog?.close()
      this.plane.accessLog = this.openAccessLog(config)
      this.accessLogKey = key
    }
  }

  /** Applies a weight update the control plane validated (ProxyControl.acceptWeights). */
  setWeights(serviceName: string, weights: Readonly<Record<string, number>>): ServiceState {
    const service = this.plane.runtime.services.get(serviceName)
    if (service === undefined) throw new Error(`service ${serviceName}: set weights failed: not in config generation ${this.plane.runtime.generation}`)
    service.setWeights(weights)
    return serviceState(service)
  }

  window(service: string, versions: readonly string[], sinceMs: number, untilMs: number): Record<string, number[]> {
    return this.stats.window(service, versions, sinceMs, untilMs)
  }

  get retentionSeconds(): number {
    return this.stats.retentionSeconds
  }

  services(): Record<string, ServiceState> {
    return servicesState(this.plane.runtime)
  }

  counters(): CounterSnapshot {
    return {...this.stats.snapshot(), upstreams: this.pools.gates(), bufferedBytes: this.plane.buffers.used}
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const code = error.code
    if (code === 'ECONNRESET' || !socket.writable || wasRefused(socket)) {
      socket.destroy()
      return
    }
    const [status, text, reason] =
      code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'header_too_large'] : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'timeout'] : [400, 'Bad Request', 'bad_request']
    this.stats.countClientError(reason)
    socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
  }

  /** Stops accepting, lets in-flight requests finish (up to `drainMs`), then closes pools and the log. */
  close(drainMs: number = this.plane.runtime.config.timeouts.drainMs): Promise<void> {
    this.closing ??= this.drain(drainMs)
    return this.closing
  }

  /** Closes without waiting for anything in flight. */
  abort(): Promise<void> {
    return this.close(0)
  }

  private async drain(drainMs: number): Promise<void> {
    this.checker.stop()
    // Upgraded connections (WebSocket) are long-lived: they end at once rather than hold the drain.
    for (const tunnel of this.plane.tunnels) tunnel.destroy()
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    const listener = this.tls ?? (this.server as Server)
    // Keep-alive connections become idle when their last response ends; close them as they do.
    const sweeper = setInterval(() => listener.closeIdleConnections(), 50)
    listener.closeIdleConnections()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        listener.closeAllConnections()
        resolve()
      }, drainMs)
    })
    await Promise.race([closed, deadline])
    clearTimeout(timer)
    clearInterval(sweeper)
    this.plane.accessLog?.close()
    await this.pools.destroyAll()
  }
}

function accessLogKey(config: ProxyConfig): string | undefined {
  return config.accessLog === undefined ? undefined : `${config.accessLog.maxBufferBytes} ${config.accessLog.path}`
}
