/**
 * `canary proxy --workers N` (node:cluster): N workers share the data-plane port; the primary owns
 * the admin API and the config, broadcasts weight changes and reloads to every worker (a change is
 * acknowledged only after all applied it), and sums metrics and stats across workers. A worker
 * that dies is replaced with the current config.
 */
import cluster, {type Worker} from 'node:cluster'
import {createServer, type AddressInfo} from 'node:net'
import {fileURLToPath} from 'node:url'

import {Registry} from 'prom-client'

import {canaryErrorFromJson, ConfigError, listenError, messageOf, UsageError} from '../errors.js'
import {AdminAccess, AdminRequestError, createAdminServer, type ControlPlane} from './admin.js'
import type {PrimaryMessage, WorkerCall, WorkerMessage, WorkerResults} from './cluster-protocol.js'
import {loadProxyConfig, splitHostPort, type ProxyConfig} from './config.js'
import {ProxyMetrics} from './metrics.js'
import type {BoundAddress} from './proxy-instance.js'
import {weightUpdateProblem, withWeights} from './runtime.js'
import {assertAdminSafe, assertReloadKeepsAdminSafe, FileSetWatcher, formatHost, handleProxySignals, httpUrl, listenAdmin, logCertificateWarnings, logToStderr, statsWindow, tlsState, watchFile, type RunningProxy, type StartProxyOptions} from './server.js'
import {mergeServices, type ProxyState} from './state.js'
import {loadCertificateStore, type CertificateStore} from './tls.js'
import {startRedirect, tlsFiles, type RedirectListener} from './tls-listener.js'
import {DEFAULT_RETENTION_SECONDS, sumCounters, sumWindows, windowStats} from './traffic-stats.js'

/** Options of startProxyCluster: startProxy's plus the worker count. */
export interface StartClusterOptions extends StartProxyOptions {
  readonly workers: number
  /** Node flags for the workers; default: this process's flags plus a bounded young generation. */
  readonly workerExecArgv?: readonly string[]
}

/**
 * A bounded young generation keeps a worker under the 128 MB RSS goal (research/perf-baseline.md).
 * 16 MiB semi-spaces, not 8: with 8 MiB the worker scavenged twice as often and needed ~10 % more
 * CPU per request (in-process A/B under wrk -c64, 6 of 7 rounds), for ~11 MB less RSS (95 vs 106).
 */
export function defaultWorkerExecArgv(): string[] {
  const flags = [...process.execArgv]
  const userSet = [...flags, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((f) => f.startsWith('--max-semi-space-size'))
  if (!userSet) flags.push('--max-semi-space-size=16')
  return flags
}

/** A cluster proxy; `setWeights` and `state` are asynchronous here (they go through every worker). */
export interface RunningCluster extends Omit<RunningProxy, 'setWeights' | 'state'> {
  setWeights(service: string, weights: Readonly<Record<string, number>>): Promise<unknown>
  state(): Promise<ProxyState>
}

interface PendingCall {
  readonly worker: Worker
  resolve(value: unknown): void
  reject(error: Error): void
}

/** A worker that does not answer a call within this time fails it (the admin request gets 500, not a hang). */
const CALL_TIMEOUT_MS = 10_000

/** `host:0` → `host:<a free port>`; other addresses unchanged. */
async function concreteListen(listen: string): Promise<string> {
  const {host, port} = splitHostPort(listen)
  if (port !== 0) return listen
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(listenError(error, listen, 'proxy listener')))
    probe.listen({host, port: 0}, () => resolve())
  })
  const free = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return `${formatHost(host)}:${free}`
}

export async function startProxyCluster(initial: ProxyConfig, options: StartClusterOptions): Promise<RunningCluster> {
  if (!cluster.isPrimary) throw new UsageError('proxy cluster: start failed: already inside a cluster worker')
  assertAdminSafe(initial)
  const log = options.log ?? logToStderr
  const configFile = options.configFile ?? initial.file
  const retentionSeconds = options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS
  const startedAt = new Date().toISOString()
  let config = initial
  let generation = 1
  const reloads = {success: 0, failure: 0}
  // The primary reads the certificates too: a broken pair is refused here before any worker sees
  // the reload, and the state API reports what the workers serve.
  let certificates: CertificateStore | undefined = config.tls === undefined ? undefined : loadCertificateStore(config.tls, config.file)
  let stopping = false
  let nextCallId = 1
  const pending = new Map<number, PendingCall>()
  /** Workers that are serving; calls go only to these (a starting worker has nothing to answer yet). */
  const workers = new Set<Worker>()

  // `../proxy/`: in the built CLI this code sits in a shared chunk, two levels down like src/proxy.
  const exec = fileURLToPath(new URL(`../proxy/cluster-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url))
  // Workers accept on the shared socket themselves instead of the primary accepting and handing
  // each connection over IPC (SCHED_RR): no extra hop and no primary bottleneck for short connections.
  cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({exec, args: [], silent: false, execArgv: [...(options.workerExecArgv ?? defaultWorkerExecArgv())]})

  const call = <M extends WorkerCall['method']>(worker: Worker, request: Extract<WorkerCall, {method: M}>): Promise<WorkerResults[M]> =>
    new Promise((resolve, reject) => {
      const id = nextCallId++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`proxy worker ${worker.process.pid ?? '?'}: ${request.method} got no answer in ${CALL_TIMEOUT_MS} ms`))
      }, request.method === 'drain' ? config.timeouts.drainMs + CALL_TIMEOUT_MS : CALL_TIMEOUT_MS)
      timer.unref()
      pending.set(id, {
        worker,
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as WorkerResults[M])
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      worker.send({type: 'call', id, call: request} satisfies PrimaryMessage)
    })
  const callAll = <M extends WorkerCall['method']>(request: Extract<WorkerCall, {method: M}>): Promise<WorkerResults[M][]> => Promise.all([...workers].map((w) => call(w, request)))

  const fork = (): Promise<BoundAddress> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork({CANARY_PROXY_WORKER: '1'})
      let startedWith = config
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'hello') {
          startedWith = config
          worker.send({type: 'start', config, generation, retentionSeconds, listen: boundListen} satisfies PrimaryMessage)
        } else if (message.type === 'ready') {
          workers.add(worker)
          // A weight change or reload while it started went to the others only: catch up.
          if (startedWith !== config) void call(worker, {method: 'apply', config, generation}).catch((error: unknown) => log({level: 'error', msg: 'worker catch-up failed', error: messageOf(error)}))
          resolve({host: message.host, port: message.port})
        }
        else if (message.type === 'failed') reject((message.errorJson === undefined ? undefined : canaryErrorFromJson(message.errorJson)) ?? new UsageError(`proxy worker ${worker.process.pid ?? '?'}: start failed: ${message.error}`))
        else if (message.type === 'reply') {
          const waiting = pending.get(message.id)
          pending.delete(message.id)
          if (waiting === undefined) return
          if (message.error === undefined) waiting.resolve(message.result)
          else waiting.reject(message.error.status === undefined ? new Error(message.error.message) : new AdminRequestError(message.error.status, message.error.message))
        }
      })
      worker.on('exit', (code, signal) => {
        workers.delete(worker)
        for (const [id, call] of pending) {
          if (call.worker !== worker) continue
          pending.delete(id)
          call.reject(new Error(`proxy worker ${worker.process.pid ?? '?'}: exited before answering (code ${code}, signal ${signal})`))
        }
        reject(new UsageError(`proxy worker ${worker.process.pid ?? '?'}: exited during start (code ${code}, signal ${signal})`))
        if (!stopping) {
          log({level: 'error', msg: 'worker exited; starting a replacement', pid: worker.process.pid, code, signal})
          fork().catch((error: unknown) => log({level: 'error', msg: 'replacement worker failed', error: messageOf(error)}))
        }
      })
    })

  // Every worker, replacements included, listens on one concrete address: node:cluster shares a
  // socket per (host, port) key, and a `:0` key would pick a new port once the last worker died.
  const boundListen = await concreteListen(config.listen)
  const addresses: BoundAddress[] = []
  try {
    // The first worker binds (port 0 picks a port); the others then share that same port.
    addresses.push(await fork())
    addresses.push(...(await Promise.all(Array.from({length: options.workers - 1}, () => fork()))))
  } catch (error) {
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill()
    throw error
  }
  const address = addresses[0]!

  const reload = async (next?: ProxyConfig): Promise<number> => {
    try {
      const candidate = next ?? (await loadProxyConfig(configFile, options.env))
      assertAdminSafe(candidate)
      assertReloadKeepsAdminSafe(adminAddress, candidate)
      if ((candidate.tls === undefined) !== (config.tls === undefined)) throw new ConfigError(`proxy config ${candidate.file}: reload refused: adding or removing \`tls\` needs a restart`, [], {subject: candidate.file, suggestions: ['Restart the proxy to switch the listener between HTTP and HTTPS.']})
      const candidateCertificates = candidate.tls === undefined ? undefined : loadCertificateStore(candidate.tls, candidate.file)
      await callAll({method: 'apply', config: candidate, generation: generation + 1})
      access.update(candidate.admin)
      config = candidate
      certificates = candidateCertificates
      generation++
      reloads.success++
      log({level: 'info', msg: 'config reloaded', generation, file: configFile, workers: workers.size})
      logCertificateWarnings(certificates, log)
      tlsWatcher?.set(tlsFiles(config))
      return generation
    } catch (error) {
      reloads.failure++
      log({level: 'error', msg: 'config reload refused; the previous config keeps serving', generation, error: messageOf(error), ...(error instanceof ConfigError ? {problems: error.problems} : {})})
      throw error
    }
  }

  const setWeights = async (service: string, weights: unknown) => {
    const current = Object.hasOwn(config.services, service) ? config.services[service] : undefined
    if (current === undefined) throw new AdminRequestError(404, `service ${service}: not found (services: ${Object.keys(config.services).join(', ')})`)
    const problem = weightUpdateProblem(current, weights)
    if (problem !== undefined) throw new AdminRequestError(400, `service ${service}: set weights refused: ${problem}`)
    const update = weights as Record<string, number>
    const states = await callAll({method: 'setWeights', service, weights: update})
    config = withWeights(config, service, update)
    return mergeServices(states.map((s) => ({[service]: s})))[service]!
  }

  const state = async (): Promise<ProxyState> => ({
    generation,
    startedAt,
    pid: process.pid,
    workers: workers.size,
    config: configFile,
    listen: `${address.host}:${address.port}`,
    admin: `${adminAddress.host}:${adminAddress.port}`,
    reloads: {...reloads},
    routes: config.routes.map((r) => ({name: r.name, service: r.service, ...(r.host === undefined ? {} : {host: r.host}), ...(r.path === undefined ? {} : {path: r.path}), ...(r.pathPrefix === undefined ? {} : {pathPrefix: r.pathPrefix}), ...(r.priority === undefined ? {} : {priority: r.priority})})),
    services: mergeServices(await callAll({method: 'services'})),
    ...tlsState(certificates, redirect),
  })

  const control: ControlPlane = {
    state,
    setWeights,
    stats: async (service, sinceMs) => {
      const current = Object.hasOwn(config.services, service) ? config.services[service] : undefined
      if (current === undefined) throw new AdminRequestError(404, `service ${service}: not found`)
      const window = statsWindow(sinceMs, retentionSeconds)
      const parts = await callAll({method: 'window', service, versions: current.versions.map((v) => v.name), sinceMs: window.sinceMs, untilMs: window.untilMs})
      return {service, ...window, retentionSeconds, versions: windowStats(sumWindows(parts))}
    },
    reload: async () => ({generation: await reload()}),
    metricsView: async () => {
      const [counters, services] = await Promise.all([callAll({method: 'counters'}), callAll({method: 'services'})])
      return {counters: sumCounters(counters), services: mergeServices(services), reloads: {...reloads}, generation}
    },
  }
  const metrics = new ProxyMetrics(options.registry ?? new Registry())
  const access = new AdminAccess(config.admin)
  const admin = createAdminServer(control, metrics, access, config.timeouts)
  let adminAddress: BoundAddress
  // The https redirect is tiny (a 308 per request): the primary serves it, not every worker.
  let redirect: RedirectListener | undefined
  try {
    adminAddress = await listenAdmin(admin, config.admin.listen)
    redirect = await startRedirect(config, address.port)
  } catch (error) {
    stopping = true
    admin.close()
    for (const worker of workers) worker.kill()
    throw error
  }
  logCertificateWarnings(certificates, log)

  const watcher = options.watchConfig === true ? watchFile(configFile, () => void reload().catch(() => undefined)) : undefined
  const tlsWatcher = options.watchConfig === true ? new FileSetWatcher(() => void reload().catch(() => undefined)) : undefined
  tlsWatcher?.set(tlsFiles(config))
  let resolveClosed: () => void = () => undefined
  const closed = new Promise<void>((r) => (resolveClosed = r))
  let closing: Promise<void> | undefined
  let removeSignalHandlers = (): void => undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stopping = true
      watcher?.close()
      tlsWatcher?.close()
      removeSignalHandlers()
      await redirect?.close()
      admin.closeAllConnections()
      const adminClosed = new Promise<void>((r) => admin.close(() => r()))
      const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
      const exits = all.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))))
      // Serving workers drain; one still starting has nothing in flight.
      for (const w of all) if (!workers.has(w)) w.kill()
      const killTimer = setTimeout(() => {
        for (const w of all) w.kill('SIGKILL')
      }, config.timeouts.drainMs + 2000)
      await callAll({method: 'drain'}).catch(() => undefined)
      await Promise.all(exits)
      clearTimeout(killTimer)
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
    setWeights,
    state,
    closed,
    close,
  }
}
