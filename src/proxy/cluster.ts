/**
 * `canary proxy --workers N` (node:cluster): N workers share the data-plane port. The primary runs
 * the control plane (control.ts: config, admin API, reloads, weights) over a WorkerFleet, the data
 * plane as N processes: it broadcasts each change to every worker (a change is acknowledged only
 * after all applied it) and sums or merges what they count. A worker that dies is replaced with
 * the current config, API-set weights included.
 */
import cluster, {type Worker} from 'node:cluster'
import {createServer, type AddressInfo} from 'node:net'
import {fileURLToPath} from 'node:url'

import {canaryErrorFromJson, listenError, messageOf, UsageError} from '../errors.js'
import {formatHost, splitHostPort, type BoundAddress} from './address.js'
import type {PrimaryMessage, WorkerCall, WorkerMessage, WorkerResults} from './cluster-protocol.js'
import type {ProxyConfig} from './config.js'
import {logToStderr, ProxyControl, type CurrentGeneration, type DataPlane, type RunningProxyBase} from './control.js'
import type {StartProxyOptions} from './server.js'
import {mergeServices, type ProxyState, type ServiceState} from './state.js'
import {loadCertificateStore, type CertificateStore} from './tls.js'
import {DEFAULT_RETENTION_SECONDS, sumCounters, sumWindows, type CounterSnapshot} from './traffic-stats.js'

/** Options of startProxyCluster: startProxy's plus the worker count. */
export interface StartClusterOptions extends StartProxyOptions {
  readonly workers: number
  /** Node flags for the workers; default: this process's flags plus a bounded young generation. */
  readonly workerExecArgv?: readonly string[]
}

/**
 * A bounded young generation keeps a worker under the 128 MB RSS goal (measured with bench:proxy).
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
export interface RunningCluster extends RunningProxyBase {
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
  const control = new ProxyControl(initial, options, (current) => new WorkerFleet(options, current))
  await control.start()
  return Object.assign(control.running(), {
    setWeights: (service: string, weights: Readonly<Record<string, number>>) => control.setWeights(service, weights),
    state: async () => control.state(await control.plane.services()),
  })
}

/**
 * The data plane as worker processes sharing one port: each call goes to every serving worker
 * over IPC, and their answers are merged (state) or summed (counters, stats windows).
 */
class WorkerFleet implements DataPlane {
  readonly retentionSeconds: number
  /**
   * The primary reads the certificates too: a broken pair is refused here before any worker sees
   * the reload, and the state API reports what the workers serve.
   */
  certificates: CertificateStore | undefined
  private stopping = false
  private nextCallId = 1
  private readonly pending = new Map<number, PendingCall>()
  /** Workers that are serving; calls go only to these (a starting worker has nothing to answer yet). */
  private readonly serving = new Set<Worker>()
  /** The concrete address every worker listens on (set by listen()). */
  private boundListen = ''
  private readonly log: (event: Record<string, unknown>) => void

  constructor(
    private readonly options: StartClusterOptions,
    /** What a starting worker runs: the config with API-set weights, from the control plane. */
    private readonly current: () => CurrentGeneration,
  ) {
    this.log = options.log ?? logToStderr
    this.retentionSeconds = options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS
    const {config} = current()
    this.certificates = config.tls === undefined ? undefined : loadCertificateStore(config.tls, config.file)
    // `../proxy/`: in the built CLI this code sits in a shared chunk, two levels down like src/proxy.
    const exec = fileURLToPath(new URL(`../proxy/cluster-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url))
    // Workers accept on the shared socket themselves instead of the primary accepting and handing
    // each connection over IPC (SCHED_RR): no extra hop and no primary bottleneck for short connections.
    cluster.schedulingPolicy = cluster.SCHED_NONE
    cluster.setupPrimary({exec, args: [], silent: false, execArgv: [...(options.workerExecArgv ?? defaultWorkerExecArgv())]})
  }

  get workers(): number {
    return this.serving.size
  }

  async listen(): Promise<BoundAddress> {
    // Every worker, replacements included, listens on one concrete address: node:cluster shares a
    // socket per (host, port) key, and a `:0` key would pick a new port once the last worker died.
    this.boundListen = await concreteListen(this.current().config.listen)
    // The first worker binds (port 0 picks a port); the others then share that same port.
    const first = await this.fork()
    await Promise.all(Array.from({length: this.options.workers - 1}, () => this.fork()))
    return first
  }

  async apply(config: ProxyConfig, generation: number): Promise<void> {
    const certificates = config.tls === undefined ? undefined : loadCertificateStore(config.tls, config.file)
    await this.callAll({method: 'apply', config, generation})
    this.certificates = certificates
  }

  async setWeights(service: string, weights: Readonly<Record<string, number>>): Promise<ServiceState> {
    const states = await this.callAll({method: 'setWeights', service, weights})
    return mergeServices(states.map((s) => ({[service]: s})))[service]!
  }

  async services(): Promise<Record<string, ServiceState>> {
    return mergeServices(await this.callAll({method: 'services'}))
  }

  async counters(): Promise<CounterSnapshot> {
    return sumCounters(await this.callAll({method: 'counters'}))
  }

  async window(service: string, versions: readonly string[], sinceMs: number, untilMs: number): Promise<Record<string, number[]>> {
    return sumWindows(await this.callAll({method: 'window', service, versions: [...versions], sinceMs, untilMs}))
  }

  async close(): Promise<void> {
    this.stopping = true
    const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    const exits = all.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))))
    // Serving workers drain; one still starting has nothing in flight.
    for (const w of all) if (!this.serving.has(w)) w.kill()
    const killTimer = setTimeout(() => {
      for (const w of all) w.kill('SIGKILL')
    }, this.current().config.timeouts.drainMs + 2000)
    await this.callAll({method: 'drain'}).catch(() => undefined)
    await Promise.all(exits)
    clearTimeout(killTimer)
  }

  async abort(): Promise<void> {
    this.stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill()
  }

  private call<M extends WorkerCall['method']>(worker: Worker, request: Extract<WorkerCall, {method: M}>): Promise<WorkerResults[M]> {
    return new Promise((resolve, reject) => {
      const id = this.nextCallId++
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`proxy worker ${worker.process.pid ?? '?'}: ${request.method} got no answer in ${CALL_TIMEOUT_MS} ms`))
      }, request.method === 'drain' ? this.current().config.timeouts.drainMs + CALL_TIMEOUT_MS : CALL_TIMEOUT_MS)
      timer.unref()
      this.pending.set(id, {
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
      // A worker that just drained has closed its channel: the send fails the call instead of
      // emitting an 'error' event that would take the primary down.
      worker.send({type: 'call', id, call: request} satisfies PrimaryMessage, (error: Error | null) => {
        if (error === null) return
        this.pending.delete(id)
        clearTimeout(timer)
        reject(new Error(`proxy worker ${worker.process.pid ?? '?'}: ${request.method} not sent: ${error.message}`))
      })
    })
  }

  private callAll<M extends WorkerCall['method']>(request: Extract<WorkerCall, {method: M}>): Promise<WorkerResults[M][]> {
    return Promise.all([...this.serving].map((w) => this.call(w, request)))
  }

  private fork(): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      const worker = cluster.fork({CANARY_PROXY_WORKER: '1'})
      let startedWith = this.current().revision
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'hello') {
          const {config, generation, revision} = this.current()
          startedWith = revision
          worker.send({type: 'start', config, generation, retentionSeconds: this.retentionSeconds, listen: this.boundListen} satisfies PrimaryMessage)
        } else if (message.type === 'ready') {
          this.serving.add(worker)
          // A weight change or reload while it started went to the others only: catch up.
          const now = this.current()
          if (now.revision !== startedWith) void this.call(worker, {method: 'apply', config: now.config, generation: now.generation}).catch((error: unknown) => this.log({level: 'error', msg: 'worker catch-up failed', error: messageOf(error)}))
          resolve({host: message.host, port: message.port})
        } else if (message.type === 'failed') reject((message.errorJson === undefined ? undefined : canaryErrorFromJson(message.errorJson)) ?? new UsageError(`proxy worker ${worker.process.pid ?? '?'}: start failed: ${message.error}`))
        else if (message.type === 'reply') {
          const waiting = this.pending.get(message.id)
          this.pending.delete(message.id)
          if (waiting === undefined) return
          if (message.error === undefined) waiting.resolve(message.result)
          else waiting.reject(new Error(message.error.message))
        }
      })
      worker.on('exit', (code, signal) => {
        this.serving.delete(worker)
        for (const [id, call] of this.pending) {
          if (call.worker !== worker) continue
          this.pending.delete(id)
          call.reject(new Error(`proxy worker ${worker.process.pid ?? '?'}: exited before answering (code ${code}, signal ${signal})`))
        }
        reject(new UsageError(`proxy worker ${worker.process.pid ?? '?'}: exited during start (code ${code}, signal ${signal})`))
        if (!this.stopping) {
          this.log({level: 'error', msg: 'worker exited; starting a replacement', pid: worker.process.pid, code, signal})
          this.fork().catch((error: unknown) => this.log({level: 'error', msg: 'replacement worker failed', error: messageOf(error)}))
        }
      })
    })
  }
}
