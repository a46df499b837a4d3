/**
 * One process's data plane: the HTTP listener, the compiled config generation, upstream pools,
 * health, counters and the access log. Used directly by `startProxy` and by each cluster worker.
 */
import {createServer, type Server} from 'node:http'
import type {Socket} from 'node:net'

import {listenError} from '../errors.js'
import {AccessLog} from './access-log.js'
import {splitHostPort} from './address.js'
import type {ProxyConfig} from './config.js'
import {BufferBudget, handleConnect, handleRequest, handleUpgrade, wasRefused, type DataPlaneContext} from './data-plane.js'
import {HealthChecker} from './health-checker.js'
import {HealthRegistry, PoolRegistry, poolSettings, ProxyRuntime, weightUpdateProblem} from './runtime.js'
import {serviceState, servicesState, type ServiceState} from './state.js'
import {TrafficStats, type CounterSnapshot} from './traffic-stats.js'
import {AdminRequestError} from './admin.js'

/** A bound address. */
export interface BoundAddress {
  readonly host: string
  readonly port: number
}

export class ProxyInstance {
  readonly stats: TrafficStats
  private readonly pools: PoolRegistry
  private readonly health = new HealthRegistry()
  private readonly plane: DataPlaneContext
  private readonly server: Server
  private checker: HealthChecker
  /** The access-log settings in use, to reopen it only when they change. */
  private accessLogKey: string | undefined
  private closing: Promise<void> | undefined

  constructor(config: ProxyConfig, generation: number, retentionSeconds?: number) {
    this.stats = new TrafficStats(retentionSeconds)
    this.pools = new PoolRegistry(poolSettings(config))
    const runtime = new ProxyRuntime(config, generation, this.pools, this.health, this.stats)
    this.accessLogKey = accessLogKey(config)
    this.plane = {
      runtime,
      stats: this.stats,
      accessLog: this.openAccessLog(config),
      trustedProxyHops: config.trustedProxyHops,
      localPort: String(splitHostPort(config.listen).port),
      tunnels: new Set(),
      buffers: new BufferBudget(config.limits.bufferTotalBytes),
    }
    this.checker = new HealthChecker(runtime)
    const t = config.timeouts
    this.server = createServer(
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
    this.server.on('upgrade', (req, socket, head) => handleUpgrade(this.plane, req, socket, head))
    this.server.on('connect', (req, socket) => handleConnect(this.plane, req, socket))
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket))
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

  /** Swaps in a new config generation atomically (throws ConfigError before touching anything). */
  apply(config: ProxyConfig, generation: number): void {
    const runtime = new ProxyRuntime(config, generation, this.pools, this.health, this.stats, this.plane.runtime)
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

  /** Validates and applies a weight update; throws AdminRequestError (404/400). */
  setWeights(serviceName: string, weights: unknown): ServiceState {
    const service = this.plane.runtime.services.get(serviceName)
    if (service === undefined) throw new AdminRequestError(404, `service ${serviceName}: not found (services: ${[...this.plane.runtime.services.keys()].join(', ')})`)
    const problem = weightUpdateProblem(service, weights)
    if (problem !== undefined) throw new AdminRequestError(400, `service ${serviceName}: set weights refused: ${problem}`)
    service.setWeights(weights as Record<string, number>)
    return serviceState(service)
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

  private async drain(drainMs: number): Promise<void> {
    this.checker.stop()
    // Upgraded connections (WebSocket) are long-lived: they end at once rather than hold the drain.
    for (const tunnel of this.plane.tunnels) tunnel.destroy()
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // Keep-alive connections become idle when their last response ends; close them as they do.
    const sweeper = setInterval(() => this.server.closeIdleConnections(), 50)
    this.server.closeIdleConnections()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.server.closeAllConnections()
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
