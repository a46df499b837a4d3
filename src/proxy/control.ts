/**
 * The proxy's control plane, one implementation for both ways of running it: the config and its
 * generation, reloads (the file, SIGHUP, the watcher, the admin API), the admin API and who may
 * call it, weights set through the API, the state and stats APIs, signals and an orderly close.
 * It drives a DataPlane: a ProxyInstance in this process (`startProxy`, server.ts), or the worker
 * processes of `canary proxy` over IPC (`WorkerFleet`, cluster.ts).
 */
import type {Server} from 'node:http'

import {Registry} from 'prom-client'

import {ConfigError, listenError, messageOf} from '../errors.js'
import {formatHost, isLoopbackHost, splitHostPort, type BoundAddress} from './address.js'
import {AdminAccess, AdminRequestError, createAdminServer, type ControlPlane} from './admin.js'
import {FileSetWatcher, watchFile} from './config-watch.js'
import {loadProxyConfig, type ProxyConfig} from './config.js'
import {ProxyMetrics, type MetricsView} from './metrics.js'
import {weightUpdateProblem} from './runtime.js'
import {routesState, type ProxyState, type ServiceState} from './state.js'
import {certificateState, certificateWarnings, type CertificateStore} from './tls.js'
import {startRedirect, tlsFiles, type RedirectListener} from './tls-listener.js'
import {windowStats, type CounterSnapshot, type ServiceStats} from './traffic-stats.js'

/** A value now (the in-process data plane) or later (a fleet answers once its workers did). */
export type Answer<T> = T | Promise<T>

/** What the control plane drives. */
export interface DataPlane {
  /** Binds the data-plane listener; resolves with the address actually bound. */
  listen(): Promise<BoundAddress>
  /** Swaps in a config generation, or throws (ConfigError) and keeps the one serving. */
  apply(config: ProxyConfig, generation: number): Answer<void>
  /** Applies a weight update the control plane validated; answers with the service's state. */
  setWeights(service: string, weights: Readonly<Record<string, number>>): Answer<ServiceState>
  services(): Answer<Record<string, ServiceState>>
  counters(): Answer<CounterSnapshot>
  /** Raw per-second sums of a service's versions over a window (TrafficStats.window). */
  window(service: string, versions: readonly string[], sinceMs: number, untilMs: number): Answer<Record<string, number[]>>
  readonly retentionSeconds: number
  /** Processes serving traffic. */
  readonly workers: number
  /** The certificates new TLS handshakes get (undefined without `tls`). */
  readonly certificates: CertificateStore | undefined
  /** Stops accepting, drains in-flight requests (up to timeouts.drainMs), closes. */
  close(): Promise<void>
  /** Stops at once: the proxy failed to start. */
  abort(): Promise<void>
}

/** What the data plane runs now: the config with API-set weights in place, and its generation. */
export interface CurrentGeneration {
  readonly config: ProxyConfig
  readonly generation: number
  /** Changes whenever config or weights change (a worker that started meanwhile catches up). */
  readonly revision: number
}

/** Options shared by startProxy and startProxyCluster; everything is optional. */
export interface ControlOptions {
  /** File re-read by reload(), POST /api/reload, SIGHUP and the watcher; default `config.file`. */
  readonly configFile?: string
  /** Environment for `${VAR}` on reload; default process.env. */
  readonly env?: NodeJS.ProcessEnv
  /** Registry for /metrics; default a new one (never prom-client's global registry). */
  readonly registry?: Registry
  /** Operational events (reloads, errors) as objects; default JSON lines on stderr. */
  readonly log?: (event: Record<string, unknown>) => void
  /** Reload when the config file, or a certificate, key or CA file it names, changes. Default false. */
  readonly watchConfig?: boolean
  /** Reload on SIGHUP, drain and close on SIGTERM/SIGINT. Default false (the command turns it on). */
  readonly handleSignals?: boolean
  /** Stats retention in seconds (default 3600). */
  readonly retentionSeconds?: number
}

/**
 * Weights set through the admin API since the last reload: their one record outside the data
 * plane. A cluster worker that starts (a replacement) gets them; a successful reload clears them,
 * because the file's weights apply then (docs/proxy.md "Weights"), in both modes alike.
 */
export class WeightOverlay {
  private readonly byService = new Map<string, Map<string, number>>()

  set(service: string, update: Readonly<Record<string, number>>): void {
    const weights = this.byService.get(service) ?? new Map<string, number>()
    for (const [version, weight] of Object.entries(update)) weights.set(version, weight)
    this.byService.set(service, weights)
  }

  clear(): void {
    this.byService.clear()
  }

  /** `config` with the overlaid weights in place of the file's. */
  appliedTo(config: ProxyConfig): ProxyConfig {
    if (this.byService.size === 0) return config
    const services = {...config.services}
    for (const [service, weights] of this.byService) {
      const current = Object.hasOwn(services, service) ? services[service] : undefined
      if (current !== undefined) services[service] = {...current, versions: current.versions.map((v) => ({...v, weight: weights.get(v.name) ?? v.weight}))}
    }
    return {...config, services}
  }
}

/** What a running proxy offers in both modes (startProxy and startProxyCluster add setWeights and state). */
export interface RunningProxyBase {
  /** Data-plane address actually bound. */
  readonly address: BoundAddress
  /** Admin API address actually bound. */
  readonly adminAddress: BoundAddress
  /** `http://host:port` of the data plane (`https://` with `tls:`). */
  readonly url: string
  /** The plain-HTTP listener that redirects to https (`tls.redirect`), if any. */
  readonly redirectAddress?: BoundAddress
  /** `http://host:port` of the admin API. */
  readonly adminUrl: string
  readonly generation: number
  /** Swaps in `config`, or re-reads the config file when omitted; resolves with the new generation. Throws ConfigError and keeps the old config. */
  reload(config?: ProxyConfig): Promise<number>
  /** Resolves once the proxy stopped: after SIGTERM/SIGINT (handleSignals) or close(). */
  readonly closed: Promise<void>
  /** Stops accepting, drains in-flight requests (up to timeouts.drainMs), closes everything. */
  close(): Promise<void>
}

/** The control plane of one running proxy, over its data plane `P`. */
export class ProxyControl<P extends DataPlane = DataPlane> {
  readonly plane: P
  readonly configFile: string
  readonly closed: Promise<void>
  private config: ProxyConfig
  private generationNumber = 1
  private revision = 0
  private readonly weights = new WeightOverlay()
  private readonly reloads = {success: 0, failure: 0}
  private readonly startedAt = new Date().toISOString()
  private readonly log: (event: Record<string, unknown>) => void
  private readonly access: AdminAccess
  private readonly admin: Server
  private listening: {address: BoundAddress; adminAddress: BoundAddress; redirect: RedirectListener | undefined} | undefined
  /** Reloads and weight changes run one at a time, so every worker sees them in one order. */
  private changes: Promise<unknown> = Promise.resolve()
  private watchers: {config: {close(): void}; tls: FileSetWatcher} | undefined
  private removeSignalHandlers = (): void => undefined
  private closing: Promise<void> | undefined
  private resolveClosed: () => void = () => undefined

  /** `plane` builds the data plane; it may read what to run through the function it is given. */
  constructor(
    initial: ProxyConfig,
    private readonly options: ControlOptions,
    plane: (current: () => CurrentGeneration) => P,
  ) {
    assertAdminSafe(initial)
    this.config = initial
    this.configFile = options.configFile ?? initial.file
    this.log = options.log ?? logToStderr
    this.closed = new Promise<void>((resolve) => (this.resolveClosed = resolve))
    this.plane = plane(() => this.current())
    this.access = new AdminAccess(initial.admin)
    this.admin = createAdminServer(this.controlPlane(), new ProxyMetrics(options.registry ?? new Registry()), this.access, initial.timeouts)
  }

  /** Binds the data plane, the admin API and the https redirect; then watches and handles signals as asked. */
  async start(): Promise<void> {
    try {
      const address = await this.plane.listen()
      const adminAddress = await listenAdmin(this.admin, this.config.admin.listen)
      const redirect = await startRedirect(this.config, address.port)
      this.listening = {address, adminAddress, redirect}
    } catch (error) {
      await this.plane.abort()
      this.admin.close()
      throw error
    }
    logCertificateWarnings(this.plane.certificates, this.log)
    if (this.options.watchConfig === true) {
      const reload = () => void this.reload().catch(() => undefined)
      this.watchers = {config: watchFile(this.configFile, reload), tls: new FileSetWatcher(reload)}
      this.watchers.tls.set(tlsFiles(this.config))
    }
    if (this.options.handleSignals === true) this.removeSignalHandlers = handleProxySignals(() => this.reload(), () => this.close(), this.log)
  }

  /** The started proxy as its callers see it. */
  running(): RunningProxyBase {
    const {address, adminAddress, redirect} = this.bound()
    const generation = () => this.generationNumber
    return {
      address,
      adminAddress,
      ...(redirect === undefined ? {} : {redirectAddress: redirect.address}),
      url: httpUrl(address, this.config.tls !== undefined),
      adminUrl: httpUrl(adminAddress),
      get generation() {
        return generation()
      },
      reload: (config) => this.reload(config),
      closed: this.closed,
      close: () => this.close(),
    }
  }

  /** Swaps in `next`, or re-reads the config file; resolves with the new generation. Throws ConfigError and keeps the old config. */
  reload(next?: ProxyConfig): Promise<number> {
    return this.serially(async () => {
      // A watcher or signal can fire while the proxy drains: there is nothing left to reload.
      if (this.closing !== undefined) throw new Error('proxy: reload refused: the proxy is stopping')
      try {
        const candidate = next ?? (await loadProxyConfig(this.configFile, this.options.env))
        assertAdminSafe(candidate)
        assertReloadKeepsAdminSafe(this.bound().adminAddress, candidate)
        assertSameListener(this.config, candidate)
        if (candidate.listen !== this.config.listen || candidate.admin.listen !== this.config.admin.listen) {
          this.log({level: 'warn', msg: 'listen addresses changed in the config; they apply after a restart', listen: candidate.listen, admin: candidate.admin.listen})
        }
        await this.plane.apply(candidate, this.generationNumber + 1)
        // A rotated token or metricsAuth applies to the next admin request, like the rest of the config.
        this.access.update(candidate.admin)
        this.config = candidate
        this.weights.clear()
        this.revision++
        this.generationNumber++
        this.reloads.success++
        this.log({level: 'info', msg: 'config reloaded', generation: this.generationNumber, file: this.configFile, workers: this.plane.workers})
        logCertificateWarnings(this.plane.certificates, this.log)
        this.watchers?.tls.set(tlsFiles(this.config))
        return this.generationNumber
      } catch (error) {
        this.reloads.failure++
        this.log({level: 'error', msg: 'config reload refused; the previous config keeps serving', generation: this.generationNumber, error: messageOf(error), ...(error instanceof ConfigError ? {problems: error.problems} : {})})
        throw error
      }
    })
  }

  /**
   * Checks a weight update against the weights in force and records it in the overlay; returns it
   * typed for the data plane. Throws AdminRequestError (404 unknown service, 400 bad update).
   */
  acceptWeights(service: string, weights: unknown): Readonly<Record<string, number>> {
    const current = this.weightedConfig().services
    const config = Object.hasOwn(current, service) ? current[service] : undefined
    if (config === undefined) throw new AdminRequestError(404, `service ${service}: not found (services: ${Object.keys(current).join(', ')})`)
    const problem = weightUpdateProblem(config, weights)
    if (problem !== undefined) throw new AdminRequestError(400, `service ${service}: set weights refused: ${problem}`)
    const update = weights as Readonly<Record<string, number>>
    this.weights.set(service, update)
    this.revision++
    return update
  }

  /** PUT /api/services/{service}/weights: validated once here, then applied by the data plane. */
  setWeights(service: string, weights: unknown): Promise<ServiceState> {
    return this.serially(async () => this.plane.setWeights(service, this.acceptWeights(service, weights)))
  }

  /** GET /api/state, given the data plane's services. */
  state(services: Record<string, ServiceState>): ProxyState {
    const {address, adminAddress, redirect} = this.bound()
    return {
      generation: this.generationNumber,
      startedAt: this.startedAt,
      pid: process.pid,
      workers: this.plane.workers,
      config: this.configFile,
      listen: `${address.host}:${address.port}`,
      admin: `${adminAddress.host}:${adminAddress.port}`,
      reloads: {...this.reloads},
      routes: routesState(this.config),
      services,
      ...tlsState(this.plane.certificates, redirect),
    }
  }

  /** GET /api/services/{service}/stats?since=: the data plane's counters over the window. */
  async stats(service: string, sinceMs: number): Promise<ServiceStats> {
    const config = Object.hasOwn(this.config.services, service) ? this.config.services[service] : undefined
    if (config === undefined) throw new AdminRequestError(404, `service ${service}: not found`)
    const retentionSeconds = this.plane.retentionSeconds
    const window = statsWindow(sinceMs, retentionSeconds)
    const raw = await this.plane.window(service, config.versions.map((v) => v.name), window.sinceMs, window.untilMs)
    return {service, ...window, retentionSeconds, versions: windowStats(raw)}
  }

  /** Stops watching and handling signals, closes the admin API and drains the data plane. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.watchers?.config.close()
      this.watchers?.tls.close()
      this.removeSignalHandlers()
      await this.listening?.redirect?.close()
      this.admin.closeAllConnections()
      const adminClosed = new Promise<void>((resolve) => this.admin.close(() => resolve()))
      await this.plane.close()
      await adminClosed
      this.log({level: 'info', msg: 'stopped', generation: this.generationNumber})
      this.resolveClosed()
    })()
    return this.closing
  }

  /** The file's config with the API-set weights in place: what a starting worker runs. */
  private current(): CurrentGeneration {
    return {config: this.weightedConfig(), generation: this.generationNumber, revision: this.revision}
  }

  private weightedConfig(): ProxyConfig {
    return this.weights.appliedTo(this.config)
  }

  private serially<T>(change: () => Promise<T>): Promise<T> {
    const result = this.changes.then(change)
    this.changes = result.catch(() => undefined)
    return result
  }

  private bound(): NonNullable<ProxyControl<P>['listening']> {
    if (this.listening === undefined) throw new Error('proxy control: not started')
    return this.listening
  }

  /** The admin API's view of this control plane. */
  private controlPlane(): ControlPlane {
    return {
      state: async () => this.state(await this.plane.services()),
      setWeights: (service, weights) => this.setWeights(service, weights),
      stats: (service, sinceMs) => this.stats(service, sinceMs),
      reload: async () => ({generation: await this.reload()}),
      metricsView: async (): Promise<MetricsView> => {
        const [counters, services] = await Promise.all([this.plane.counters(), this.plane.services()])
        return {counters, services, reloads: {...this.reloads}, generation: this.generationNumber}
      },
    }
  }
}

/** SIGHUP reloads; SIGTERM and SIGINT drain in-flight requests, then close. Returns the undo. */
export function handleProxySignals(reload: () => Promise<unknown>, close: () => Promise<void>, log: (event: Record<string, unknown>) => void): () => void {
  const onHup = () => void reload().catch(() => undefined)
  const onTerm = () => {
    log({level: 'info', msg: 'draining in-flight requests, then exiting'})
    void close()
  }
  process.on('SIGHUP', onHup)
  process.on('SIGTERM', onTerm)
  process.on('SIGINT', onTerm)
  return () => {
    process.off('SIGHUP', onHup)
    process.off('SIGTERM', onTerm)
    process.off('SIGINT', onTerm)
  }
}

/** Default operational log: one JSON line on stderr. */
export function logToStderr(event: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({time: new Date().toISOString(), ...event})}\n`)
}

/** Refuses a non-loopback admin listener without a token (the parser checks too; this guards programmatic configs). */
export function assertAdminSafe(config: ProxyConfig): void {
  const {host} = splitHostPort(config.admin.listen)
  if (!isLoopbackHost(host) && (config.admin.token ?? '') === '') {
    throw new ConfigError(`proxy admin ${config.admin.listen}: start refused: a non-loopback admin listener needs a token`, [], {suggestions: ['Set admin.token, or listen on 127.0.0.1.']})
  }
}

/**
 * Refuses a reload that would leave the admin listener actually bound (a listen change applies only
 * after a restart) reachable from the network without a token; the old config keeps serving.
 */
export function assertReloadKeepsAdminSafe(bound: BoundAddress, candidate: ProxyConfig): void {
  if (isLoopbackHost(bound.host) || (candidate.admin.token ?? '') !== '') return
  throw new ConfigError(`proxy config ${candidate.file}: reload refused: the admin API listens on ${formatHost(bound.host)}:${bound.port}, which is not loopback, and the new config has no admin.token`, [], {
    subject: candidate.file,
    suggestions: ['Keep an admin.token in the config (rotating it to a new value is fine), or restart the proxy with admin.listen on 127.0.0.1.'],
  })
}

/** The listener's protocol is fixed at start: a reload swaps certificates, never HTTP for HTTPS. */
function assertSameListener(current: ProxyConfig, candidate: ProxyConfig): void {
  if ((candidate.tls === undefined) === (current.tls === undefined)) return
  throw new ConfigError(`proxy config ${candidate.file}: reload refused: adding or removing \`tls\` needs a restart`, [], {subject: candidate.file, suggestions: ['Restart the proxy to switch the listener between HTTP and HTTPS.']})
}

/** Aligns `since` to whole seconds and clamps it to the retention. */
export function statsWindow(sinceMs: number, retentionSeconds: number, nowMs: number = Date.now()): {sinceMs: number; untilMs: number; clamped: boolean} {
  const oldestMs = (Math.floor(nowMs / 1000) - retentionSeconds + 1) * 1000
  const aligned = Math.floor(sinceMs / 1000) * 1000
  return aligned < oldestMs ? {sinceMs: oldestMs, untilMs: nowMs, clamped: true} : {sinceMs: aligned, untilMs: nowMs, clamped: false}
}

export function listenAdmin(admin: Server, listen: string): Promise<BoundAddress> {
  const {host, port} = splitHostPort(listen)
  return new Promise((resolveListen, reject) => {
    const onError = (error: Error) => reject(listenError(error, `${host}:${port}`, 'proxy admin listener'))
    admin.once('error', onError)
    admin.listen({host, port}, () => {
      admin.off('error', onError)
      const bound = admin.address()
      if (bound === null || typeof bound === 'string') return reject(new Error('admin listener has no address'))
      resolveListen({host: bound.address, port: bound.port})
    })
  })
}

/** `http://host:port` (or `https://`) of a bound address (IPv6 hosts bracketed). */
export function httpUrl(address: BoundAddress, secure = false): string {
  return `${secure ? 'https' : 'http'}://${formatHost(address.host)}:${address.port}`
}

/** Logs what is wrong with the certificates being served (expired, not yet valid, no DNS name). */
export function logCertificateWarnings(store: CertificateStore | undefined, log: (event: Record<string, unknown>) => void): void {
  for (const certificate of store?.certificates ?? []) {
    for (const warning of certificateWarnings(certificate)) log({level: 'warn', msg: 'TLS certificate problem', certFile: certificate.certFile, warning})
  }
}

/** The `tls` part of the state API. */
function tlsState(store: CertificateStore | undefined, redirect: RedirectListener | undefined): Pick<ProxyState, 'tls'> {
  if (store === undefined) return {}
  return {tls: {certificates: store.certificates.map((c) => certificateState(c)), ...(redirect === undefined ? {} : {redirect: `${formatHost(redirect.address.host)}:${redirect.address.port}`})}}
}
