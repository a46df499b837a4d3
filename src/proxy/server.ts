/**
 * `startProxy(config, options)`: the bundled reverse proxy in this process (the engine's tests and
 * `canary proxy` use it). It binds the data plane and the admin API (port 0 works), reloads on
 * demand, on SIGHUP and on file changes (options), and `close()` drains in-flight requests.
 * `canary proxy --workers N` uses cluster.ts instead, with the same admin API.
 */
import {watch, type FSWatcher} from 'node:fs'
import type {Server} from 'node:http'
import {basename, dirname, resolve} from 'node:path'

import {Registry} from 'prom-client'

import {ConfigError, listenError, messageOf} from '../errors.js'
import {AdminAccess, AdminRequestError, createAdminServer, type ControlPlane, type ServiceStats} from './admin.js'
import {isLoopbackHost, loadProxyConfig, splitHostPort, type ProxyConfig} from './config.js'
import {ProxyMetrics, type MetricsView} from './metrics.js'
import {ProxyInstance, type BoundAddress} from './proxy-instance.js'
import {routesState, type ProxyState, type ServiceState} from './state.js'
import {certificateState, certificateWarnings, type CertificateStore} from './tls.js'
import {startRedirect, tlsFiles, type RedirectListener} from './tls-listener.js'
import {windowStats} from './traffic-stats.js'

/** Options of startProxy; everything is optional. */
export interface StartProxyOptions {
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

/** A proxy running in this process. */
export interface RunningProxy {
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
  /** Same as PUT /api/services/{service}/weights. Throws AdminRequestError. */
  setWeights(service: string, weights: Readonly<Record<string, number>>): ServiceState
  state(): ProxyState
  /** Resolves once the proxy stopped: after SIGTERM/SIGINT (handleSignals) or close(). */
  readonly closed: Promise<void>
  /** Stops accepting, drains in-flight requests (up to timeouts.drainMs), closes everything. */
  close(): Promise<void>
}

/** SIGHUP reloads; SIGTERM and SIGINT drain in-flight requests, then close. Returns the undo. */
export function handleProxySignals(reload: () => Promise<unknown>, close: () => Promise<void>, log: NonNullable<StartProxyOptions['log']>): () => void {
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

export async function startProxy(initial: ProxyConfig, options: StartProxyOptions = {}): Promise<RunningProxy> {
  assertAdminSafe(initial)
  const log = options.log ?? logToStderr
  const configFile = options.configFile ?? initial.file
  const startedAt = new Date().toISOString()
  let config = initial
  let generation = 1
  const reloads = {success: 0, failure: 0}
  const instance = new ProxyInstance(config, generation, options.retentionSeconds)
  const metrics = new ProxyMetrics(options.registry ?? new Registry())

  const reload = async (next?: ProxyConfig): Promise<number> => {
    try {
      const candidate = next ?? (await loadProxyConfig(configFile, options.env))
      assertAdminSafe(candidate)
      assertReloadKeepsAdminSafe(adminAddress, candidate)
      if (candidate.listen !== config.listen || candidate.admin.listen !== config.admin.listen) {
        log({level: 'warn', msg: 'listen addresses changed in the config; they apply after a restart', listen: candidate.listen, admin: candidate.admin.listen})
      }
      instance.apply(candidate, generation + 1)
      // A rotated token or metricsAuth applies to the next admin request, like the rest of the config.
      access.update(candidate.admin)
      config = candidate
      generation++
      reloads.success++
      log({level: 'info', msg: 'config reloaded', generation, file: configFile})
      logCertificateWarnings(instance.certificates, log)
      tlsWatcher?.set(tlsFiles(config))
      return generation
    } catch (error) {
      reloads.failure++
      log({level: 'error', msg: 'config reload refused; the previous config keeps serving', generation, error: messageOf(error), ...(error instanceof ConfigError ? {problems: error.problems} : {})})
      throw error
    }
  }

  const state = (): ProxyState => ({
    generation,
    startedAt,
    pid: process.pid,
    workers: 1,
    config: configFile,
    listen: `${address.host}:${address.port}`,
    admin: `${adminAddress.host}:${adminAddress.port}`,
    reloads: {...reloads},
    routes: routesState(instance.runtime),
    services: instance.services(),
    ...tlsState(instance.certificates, redirect),
  })

  const control: ControlPlane = {
    state: async () => state(),
    setWeights: async (service, weights) => instance.setWeights(service, weights),
    stats: async (service, sinceMs) => statsFor(instance, service, sinceMs),
    reload: async () => ({generation: await reload()}),
    metricsView: async (): Promise<MetricsView> => ({counters: instance.counters(), services: instance.services(), reloads: {...reloads}, generation}),
  }
  const access = new AdminAccess(config.admin)
  const admin = createAdminServer(control, metrics, access, config.timeouts)

  let address: BoundAddress
  let adminAddress: BoundAddress
  let redirect: RedirectListener | undefined
  try {
    address = await instance.listen()
    adminAddress = await listenAdmin(admin, config.admin.listen)
    redirect = await startRedirect(config, address.port)
  } catch (error) {
    await instance.close(0)
    admin.close()
    throw error
  }
  logCertificateWarnings(instance.certificates, log)

  let watcher: FSWatcher | undefined
  let tlsWatcher: FileSetWatcher | undefined
  if (options.watchConfig === true) {
    watcher = watchFile(configFile, () => void reload().catch(() => undefined))
    tlsWatcher = new FileSetWatcher(() => void reload().catch(() => undefined))
    tlsWatcher.set(tlsFiles(config))
  }

  let resolveClosed: () => void = () => undefined
  const closed = new Promise<void>((r) => (resolveClosed = r))
  let closing: Promise<void> | undefined
  let removeSignalHandlers = (): void => undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      watcher?.close()
      tlsWatcher?.close()
      removeSignalHandlers()
      admin.closeAllConnections()
      const adminClosed = new Promise<void>((r) => admin.close(() => r()))
      await redirect?.close()
      await instance.close()
      await adminClosed
      log({level: 'info', msg: 'stopped', generation})
      resolveClosed()
    })()
    return closing
  }
  if (options.handleSignals === true) removeSignalHandlers = handleProxySignals(reload, close, log)

  return {
    address,
    adminAddress,
    ...(redirect === undefined ? {} : {redirectAddress: redirect.address}),
    url: httpUrl(address, config.tls !== undefined),
    adminUrl: httpUrl(adminAddress),
    get generation() {
      return generation
    },
    reload,
    setWeights: (service, weights) => instance.setWeights(service, weights),
    state,
    closed,
    close,
  }
}

/** The stats API answer for one service from one instance's counters. */
export function statsFor(instance: ProxyInstance, service: string, sinceMs: number): ServiceStats {
  const runtime = instance.runtime.services.get(service)
  if (runtime === undefined) throw new AdminRequestError(404, `service ${service}: not found`)
  const window = statsWindow(sinceMs, instance.stats.retentionSeconds)
  const raw = instance.stats.window(service, runtime.versions.map((v) => v.name), window.sinceMs, window.untilMs)
  return {service, ...window, retentionSeconds: instance.stats.retentionSeconds, versions: windowStats(raw)}
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

/** Calls `onChange` (debounced) when the file is written or replaced (editors and `mv` replace it). */
export function watchFile(file: string, onChange: () => void): FSWatcher {
  const absolute = resolve(file)
  let timer: NodeJS.Timeout | undefined
  const watcher = watch(dirname(absolute), (_event, name) => {
    if (name !== null && name !== basename(absolute)) return
    clearTimeout(timer)
    timer = setTimeout(onChange, 100)
  })
  watcher.unref()
  return watcher
}

export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** `http://host:port` (or `https://`) of a bound address (IPv6 hosts bracketed). */
export function httpUrl(address: BoundAddress, secure = false): string {
  return `${secure ? 'https' : 'http'}://${formatHost(address.host)}:${address.port}`
}

/**
 * Watches a changing set of files (certificates, keys, CA bundles) and calls `onChange`, debounced
 * so that a rotation writing the certificate and then the key reloads once. It watches the
 * directories, so files replaced by `mv` or an editor are seen, and a Kubernetes Secret volume's
 * `..data` symlink swap too (its files are links through `..data`).
 */
export class FileSetWatcher {
  private watchers: FSWatcher[] = []
  private timer: NodeJS.Timeout | undefined
  private key = ''

  constructor(private readonly onChange: () => void) {}

  set(files: readonly string[]): void {
    const key = [...files].sort().join('\n')
    if (key === this.key) return
    this.close()
    this.key = key
    const byDirectory = new Map<string, Set<string>>()
    for (const file of files) {
      const absolute = resolve(file)
      const names = byDirectory.get(dirname(absolute)) ?? new Set<string>()
      names.add(basename(absolute))
      byDirectory.set(dirname(absolute), names)
    }
    for (const [directory, names] of byDirectory) {
      try {
        const watcher = watch(directory, (_event, name) => {
          if (name !== null && !names.has(name) && !name.startsWith('..')) return
          clearTimeout(this.timer)
          this.timer = setTimeout(this.onChange, 100)
        })
        watcher.unref()
        this.watchers.push(watcher)
      } catch {
        // A directory that vanished: the next reload reports the missing file.
      }
    }
  }

  close(): void {
    clearTimeout(this.timer)
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
    this.key = ''
  }
}

/** Logs what is wrong with the certificates being served (expired, not yet valid, no DNS name). */
export function logCertificateWarnings(store: CertificateStore | undefined, log: NonNullable<StartProxyOptions['log']>): void {
  for (const certificate of store?.certificates ?? []) {
    for (const warning of certificateWarnings(certificate)) log({level: 'warn', msg: 'TLS certificate problem', certFile: certificate.certFile, warning})
  }
}

/** The `tls` part of the state API. */
export function tlsState(store: CertificateStore | undefined, redirect: RedirectListener | undefined): Pick<ProxyState, 'tls'> {
  if (store === undefined) return {}
  return {tls: {certificates: store.certificates.map((c) => certificateState(c)), ...(redirect === undefined ? {} : {redirect: `${formatHost(redirect.address.host)}:${redirect.address.port}`})}}
}
