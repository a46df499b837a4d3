/**
 * The running form of a config: services with their versions, servers, EDF balancers and upstream
 * pools, built and validated once. Pools and server health live in registries
 * that outlive a config generation, so a reload keeps warm connections and health state.
 */
import {createHash} from 'node:crypto'

import {Pool} from 'undici'

import {ConfigError} from '../errors.js'
import type {ChoosableService, HeaderOverride, StickyPrecedence} from './choose-version.js'
import type {ProxyConfig, ProxyServiceConfig} from './config.js'
import {EdfBalancer, MAX_WEIGHT} from './edf-balancer.js'
import {RouteTable} from './route-table.js'
import {readCaFile} from './tls.js'
import type {TrafficStats} from './traffic-stats.js'
import {UpstreamGate} from './upstream-gate.js'

/** Resets or broken connections in a row that take a server out (connect failures need one). */
const PASSIVE_FAILURE_THRESHOLD = 3

/** Health of one upstream server: passive (cooldown after failures) and optional active checks. */
export class ServerHealth {
  downUntilMs = 0
  activeUp = true
  failures = 0
  consecutiveFailures = 0

  get healthy(): boolean {
    return this.activeUp && (this.downUntilMs === 0 || Date.now() >= this.downUntilMs)
  }
}

/**
 * How the proxy connects to an https:// upstream: certificates are always verified, against `ca`
 * when given (else Node's CA store), with `servername` as SNI and the name to verify (else the
 * URL's host; never for an IP address, which SNI cannot carry).
 */
export interface UpstreamTlsOptions {
  readonly ca?: string
  readonly servername?: string
}

/** One upstream server of a version. */
export class UpstreamServer {
  constructor(
    readonly url: string,
    readonly origin: string,
    /** Path the server URL carries (e.g. `/base`), prepended to forwarded paths; "" for none. */
    readonly basePath: string,
    readonly pool: Pool,
    /** Admission to `pool`: the connection cap, its queue and queue timeout (shared by servers of one origin). */
    readonly gate: UpstreamGate,
    readonly health: ServerHealth,
    private readonly cooldownMs: number,
    /** TLS settings for an https:// server (WebSocket tunnels use them too); undefined for http://. */
    readonly tls: UpstreamTlsOptions | undefined = undefined,
  ) {}

  get healthy(): boolean {
    return this.health.healthy
  }

  /**
   * Passive health. A refused or timed-out connect takes the server out for the cooldown at once;
   * resets and broken connections only after three in a row, so one keep-alive race (the server
   * closed an idle connection as a request went out) does not bench a healthy server.
   */
  markFailed(connectFailed: boolean): void {
    const health = this.health
    health.failures++
    health.consecutiveFailures++
    if (connectFailed || health.consecutiveFailures >= PASSIVE_FAILURE_THRESHOLD) health.downUntilMs = Date.now() + this.cooldownMs
  }

  /** A completed exchange ends a run of failures. */
  markSucceeded(): void {
    if (this.health.consecutiveFailures !== 0) this.health.consecutiveFailures = 0
  }
}

/** One version of a service. */
export class ServiceVersion {
  private next = 0
  /** The opaque sticky-cookie value naming this version (truncated SHA-256, like Traefik's sticky.go). */
  readonly stickyValue: string
  /** The complete Set-Cookie value that pins a client to this version, or undefined without sticky. */
  readonly setCookie: string | undefined

  constructor(
    readonly service: string,
    readonly name: string,
    public weight: number,
    readonly servers: readonly UpstreamServer[],
    sticky: ProxyServiceConfig['sticky'],
  ) {
    this.stickyValue = createHash('sha256').update(`${service}/${name}`).digest('hex').slice(0, 16)
    this.setCookie =
      sticky === undefined
        ? undefined
        : `${sticky.cookie}=${this.stickyValue}; Path=${sticky.path}${sticky.maxAgeSeconds === undefined ? '' : `; Max-Age=${sticky.maxAgeSeconds}`}${sticky.httpOnly ? '; HttpOnly' : ''}${sticky.secure ? '; Secure' : ''}; SameSite=${sticky.sameSite}`
  }

  get healthy(): boolean {
    const servers = this.servers
    for (let i = 0; i < servers.length; i++) if (servers[i]!.healthy) return true
    return false
  }

  /** Round robin across healthy servers; undefined when none is healthy. */
  nextServer(): UpstreamServer | undefined {
    const servers = this.servers
    const n = servers.length
    for (let i = 0; i < n; i++) {
      const server = servers[this.next % n]!
      this.next = (this.next + 1) % n
      if (server.healthy) return server
    }
    return undefined
  }
}

/** Mirroring settings of a service plus its deterministic sampling counters (Traefik mirror.go). */
export class MirrorSampler {
  private total = 0
  private mirrored = 0

  constructor(
    readonly version: ServiceVersion,
    readonly percent: number,
    readonly maxBodyBytes: number,
    readonly timeoutMs: number,
  ) {}

  /** True for `percent` of calls, spread evenly: mirror while mirrored/total is below the target. */
  sample(): boolean {
    this.total++
    if (this.mirrored * 100 < this.total * this.percent) {
      this.mirrored++
      return true
    }
    return false
  }
}

/** A service as the data plane uses it; implements what chooseVersion needs. */
export class ServiceRuntime implements ChoosableService<ServiceVersion> {
  readonly versions: readonly ServiceVersion[]
  readonly byName: ReadonlyMap<string, ServiceVersion>
  readonly canary: ServiceVersion | undefined
  readonly stable: ServiceVersion | undefined
  readonly header: HeaderOverride | undefined
  readonly stickyPrecedence: StickyPrecedence
  /** Lowercased name of the override header. */
  readonly headerName: string | undefined
  readonly cookieName: string | undefined
  readonly stickyCookieName: string | undefined
  readonly mirror: MirrorSampler | undefined
  private readonly byStickyValue: ReadonlyMap<string, ServiceVersion>
  private balancer: EdfBalancer<ServiceVersion>
  private readonly isAvailable: (version: ServiceVersion) => boolean

  constructor(
    readonly name: string,
    readonly config: ProxyServiceConfig,
    pools: PoolRegistry,
    health: HealthRegistry,
    cooldownMs: number,
    stats: TrafficStats,
    /** From upstreamTlsOptions(), read before the generation starts so a bad CA file changes nothing. */
    readonly tls: UpstreamTlsOptions = {},
  ) {
    this.versions = config.versions.map(
      (v) =>
        new ServiceVersion(
          name,
          v.name,
          v.weight,
          v.servers.map((url) => {
            const parsed = new URL(url)
            const basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/$/, '')
            const serverTls = parsed.protocol === 'https:' ? tls : undefined
            const upstream = pools.acquire(parsed.origin, serverTls)
            return new UpstreamServer(url, parsed.origin, basePath, upstream.pool, upstream.gate, health.get(url), cooldownMs, serverTls)
          }),
          config.sticky,
        ),
    )
    this.byName = new Map(this.versions.map((v) => [v.name, v]))
    this.canary = config.canary === undefined ? undefined : this.byName.get(config.canary)
    // Stable is the first version that is not the canary (docs/proxy.md "Choosing a version").
    this.stable = this.versions.find((v) => v !== this.canary)
    this.header = config.header === undefined ? undefined : {value: config.header.value, pattern: config.header.pattern === undefined ? undefined : new RegExp(config.header.pattern)}
    this.stickyPrecedence = config.sticky?.precedence ?? 'first'
    this.headerName = config.header?.name.toLowerCase()
    this.cookieName = config.cookie?.name
    this.stickyCookieName = config.sticky?.cookie
    this.byStickyValue = new Map(this.versions.map((v) => [v.stickyValue, v]))
    const mirrorVersion = config.mirror === undefined ? undefined : this.byName.get(config.mirror.version)
    this.mirror = config.mirror === undefined || mirrorVersion === undefined ? undefined : new MirrorSampler(mirrorVersion, config.mirror.percent, config.mirror.maxBodyBytes, config.mirror.timeoutMs)
    this.isAvailable = (version) => {
      if (version.healthy) return true
      stats.countRedistributed(name, version.name)
      return false
    }
    this.balancer = buildBalancer(this.versions)
  }

  stickyVersion(cookieValue: string): ServiceVersion | undefined {
    return this.byStickyValue.get(cookieValue)
  }

  pickByWeight(): ServiceVersion | undefined {
    return this.balancer.pick(this.isAvailable)
  }

  /** Applies new weights atomically (validated by the caller); the EDF schedule restarts. */
  setWeights(weights: Readonly<Record<string, number>>): void {
    for (const version of this.versions) {
      const weight = ownWeight(weights, version.name) as number | undefined
      if (weight !== undefined) version.weight = weight
    }
    this.balancer = buildBalancer(this.versions)
  }

  /** Sum of the configured weights. */
  get totalWeight(): number {
    return this.versions.reduce((sum, v) => sum + v.weight, 0)
  }
}

/** The service's upstream TLS options, reading its CA file now (a reload re-reads it). Throws ConfigError. */
export function upstreamTlsOptions(service: string, config: ProxyServiceConfig): UpstreamTlsOptions {
  const settings = config.upstreamTls
  if (settings === undefined) return {}
  let ca: string | undefined
  if (settings.caFile !== undefined) {
    try {
      ca = readCaFile(settings.caFile)
    } catch (error) {
      throw new ConfigError(`service ${service}: upstream CA file: ${(error as Error).message}`, [], {cause: error, suggestions: ['Fix services.<name>.upstreamTls.caFile; the previous config keeps serving.']})
    }
  }
  return {...(ca === undefined ? {} : {ca}), ...(settings.serverName === undefined ? {} : {servername: settings.serverName})}
}

function buildBalancer(versions: readonly ServiceVersion[]): EdfBalancer<ServiceVersion> {
  const balancer = new EdfBalancer<ServiceVersion>()
  for (const version of versions) balancer.add(version, version.weight)
  return balancer
}

/** Upstream pool settings derived from the config; a change replaces the pools. */
export interface PoolSettings {
  readonly connections: number
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly queue: number
  readonly queueTimeoutMs: number
}

/** An upstream origin's connection pool and the gate in front of it. */
export interface OriginPool {
  readonly pool: Pool
  readonly gate: UpstreamGate
}

/** One undici Pool per upstream origin and TLS settings (pipelining 1), shared across config generations. */
export class PoolRegistry {
  private readonly pools = new Map<string, OriginPool>()
  private inUse = new Set<string>()

  constructor(private settings: PoolSettings) {}

  /** Starts a generation: pools acquired until `endGeneration` are the ones kept. */
  beginGeneration(settings: PoolSettings): void {
    if (JSON.stringify(settings) !== JSON.stringify(this.settings)) {
      // New timeouts or sizes: let old pools finish their requests, then close them.
      for (const {pool, gate} of this.pools.values()) gate.whenIdle(() => void pool.close().catch(() => undefined))
      this.pools.clear()
      this.settings = settings
    }
    this.inUse = new Set()
  }

  acquire(origin: string, tls?: UpstreamTlsOptions): OriginPool {
    // Two services may reach one https origin with different CAs or names: one pool each.
    const key = tls === undefined ? origin : `${origin} ${JSON.stringify(tls)}`
    this.inUse.add(key)
    let entry = this.pools.get(key)
    if (entry === undefined) {
      const s = this.settings
      const pool = new Pool(origin, {
        connections: s.connections,
        pipelining: 1,
        // rejectUnauthorized is spelled out: verification must not depend on a process-wide default.
        connect: tls === undefined ? {timeout: s.connectTimeoutMs} : {timeout: s.connectTimeoutMs, rejectUnauthorized: true, ...tls},
        headersTimeout: s.headersTimeoutMs,
        bodyTimeout: s.bodyTimeoutMs,
        keepAliveTimeout: 4000,
      })
      entry = {pool, gate: new UpstreamGate(s.connections, s.queue, s.queueTimeoutMs)}
      this.pools.set(key, entry)
    }
    return entry
  }

  /** Admission state per origin, for metrics. */
  gates(): Record<string, {active: number; queued: number}> {
    // Keyed by origin only (a pool key may carry TLS settings, CA text included): pools of one origin are summed.
    const byOrigin: Record<string, {active: number; queued: number}> = {}
    for (const [key, {gate}] of this.pools) {
      const origin = key.split(' ', 1)[0]!
      const sum = (byOrigin[origin] ??= {active: 0, queued: 0})
      sum.active += gate.active
      sum.queued += gate.queued
    }
    return byOrigin
  }

  /** Closes pools no longer used by the current generation (after their in-flight requests). */
  endGeneration(): void {
    for (const [origin, {pool, gate}] of this.pools) {
      if (this.inUse.has(origin)) continue
      this.pools.delete(origin)
      gate.whenIdle(() => void pool.close().catch(() => undefined))
    }
  }

  async closeAll(): Promise<void> {
    const pools = [...this.pools.values()]
    this.pools.clear()
    await Promise.all(pools.map(({pool}) => pool.close().catch(() => undefined)))
  }

  async destroyAll(): Promise<void> {
    const pools = [...this.pools.values()]
    this.pools.clear()
    await Promise.all(pools.map(({pool}) => pool.destroy().catch(() => undefined)))
  }
}

/** Health per server URL, kept across reloads. */
export class HealthRegistry {
  private readonly byUrl = new Map<string, ServerHealth>()

  get(url: string): ServerHealth {
    let health = this.byUrl.get(url)
    if (health === undefined) {
      health = new ServerHealth()
      this.byUrl.set(url, health)
    }
    return health
  }
}

/** One config generation, compiled. */
export class ProxyRuntime {
  readonly routes: RouteTable
  readonly services: ReadonlyMap<string, ServiceRuntime>

  constructor(
    readonly config: ProxyConfig,
    readonly generation: number,
    pools: PoolRegistry,
    health: HealthRegistry,
    stats: TrafficStats,
    previous?: ProxyRuntime,
  ) {
    this.routes = new RouteTable(config)
    const tls = new Map(Object.entries(config.services).map(([name, service]) => [name, upstreamTlsOptions(name, service)]))
    const settings = poolSettings(config)
    const samePools = previous !== undefined && JSON.stringify(poolSettings(previous.config)) === JSON.stringify(settings) && previous.config.health.cooldownMs === config.health.cooldownMs
    pools.beginGeneration(settings)
    this.services = new Map(
      Object.entries(config.services).map(([name, service]) => {
        // An unchanged service (same servers, same live weights) keeps its runtime: the EDF
        // schedule, round-robin positions and mirror counters carry over the reload.
        const before = samePools ? previous.services.get(name) : undefined
        // A changed CA file (same path, new content) counts as a change: new pools verify with it.
        if (before !== undefined && sameService(before, service) && JSON.stringify(before.tls) === JSON.stringify(tls.get(name))) {
          for (const version of before.versions) for (const server of version.servers) pools.acquire(server.origin, server.tls)
          return [name, before]
        }
        return [name, new ServiceRuntime(name, service, pools, health, config.health.cooldownMs, stats, tls.get(name))]
      }),
    )
    pools.endGeneration()
  }
}

/** True when `config` describes exactly what `service` runs now (live weights included). */
function sameService(service: ServiceRuntime, config: ProxyServiceConfig): boolean {
  const live = {...service.config, versions: service.versions.map((v) => ({...service.config.versions.find((c) => c.name === v.name), weight: v.weight}))}
  return JSON.stringify(live) === JSON.stringify(config)
}

export function poolSettings(config: ProxyConfig): PoolSettings {
  return {
    connections: config.limits.upstreamConnections,
    connectTimeoutMs: config.timeouts.connectMs,
    headersTimeoutMs: config.timeouts.responseHeadersMs,
    bodyTimeoutMs: config.timeouts.responseBodyMs,
    queue: config.limits.upstreamQueue,
    queueTimeoutMs: config.timeouts.upstreamQueueMs,
  }
}

/** The value of `update[name]` when the update names that version itself (never an inherited property such as `constructor`). */
function ownWeight(update: Readonly<Record<string, unknown>>, name: string): unknown {
  return Object.hasOwn(update, name) ? update[name] : undefined
}

/** A JSON value as a short phrase for an error message. */
function describeValue(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : `${String(value)} (a number too large to represent)`
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  return JSON.stringify(value).slice(0, 60)
}

/**
 * Checks a weight update for one service: every named version exists, weights are integers from 0
 * to MAX_WEIGHT, and the resulting total is positive. Versions not named keep their weight.
 * Returns the reason it is invalid, or undefined.
 */
export function weightUpdateProblem(service: {versions: readonly {name: string; weight: number}[]}, update: unknown): string | undefined {
  if (update === null || typeof update !== 'object' || Array.isArray(update)) return 'expected a JSON object of version → weight, e.g. {"v1": 80, "v2": 20}'
  const names = service.versions.map((v) => v.name)
  const entries = Object.entries(update as Record<string, unknown>)
  if (entries.length === 0) return 'no weights given'
  for (const [version, weight] of entries) {
    if (!names.includes(version)) return `unknown version ${JSON.stringify(version.slice(0, 100))} (versions: ${names.join(', ')})`
    if (typeof weight !== 'number' || !Number.isInteger(weight)) return `weight of ${version} must be an integer, got ${describeValue(weight)}`
    if (weight < 0) return `weight of ${version} must not be negative, got ${weight}`
    if (weight > MAX_WEIGHT) return `weight of ${version} must be at most ${MAX_WEIGHT}, got ${describeValue(weight)} (weights are relative: scale them down)`
  }
  const merged = service.versions.map((v) => (ownWeight(update as Record<string, unknown>, v.name) as number | undefined) ?? v.weight)
  if (merged.every((w) => w === 0)) return 'all weights would be 0; at least one version needs a positive weight'
  return undefined
}
