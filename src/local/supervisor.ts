/**
 * Runs the replicas of one version on this machine: `replicas` copies of `local.command`, each
 * with its own PORT and the IMAGE in the environment, probed over HTTP until ready, restarted with
 * exponential backoff when they crash, stopped with SIGTERM then SIGKILL. Each replica is its own
 * process group so `sh -c` and whatever it starts stop together.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createWriteStream, mkdirSync, type WriteStream} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'

import type {Readiness, Track} from '../rollout/ports.js'
import {isProcessGroupAlive} from './processes.js'

/** What to run for one version. */
export interface ReplicaSpec {
  readonly track: Track
  readonly image: string
  readonly command: string
  readonly replicas: number
  /** Path probed with GET; any HTTP answer below 500 on it means ready. */
  readonly probePath: string
  readonly env: Readonly<Record<string, string>>
  readonly logDir: string
  /** Called after every (re)start, e.g. to record process groups. */
  readonly onSpawn?: () => void
}

/** Crashes after which a replica counts as crash-looping (the canary is then reported failed). */
const CRASH_LOOP_RESTARTS = 3
const BACKOFF_START_MS = 250
const BACKOFF_MAX_MS = 8000
const PROBE_EVERY_MS = 150
const PROBE_TIMEOUT_MS = 1000
const STOP_GRACE_MS = 3000
/** After SIGKILL, how long to wait for the kernel to remove the group's processes. */
const GROUP_GONE_AFTER_KILL_MS = 1000

class Replica {
  child: ChildProcess | undefined
  ready = false
  restarts = 0
  lastExit = ''
  private stopped = false
  private probeTimer: NodeJS.Timeout | undefined
  private restartTimer: NodeJS.Timeout | undefined
  private log: WriteStream

  constructor(
    private readonly spec: ReplicaSpec,
    readonly index: number,
    readonly port: number,
  ) {
    mkdirSync(spec.logDir, {recursive: true})
    this.log = createWriteStream(join(spec.logDir, `${spec.track}-${index}.log`), {flags: 'a'})
    // A replica's log on a full (or failing) disk loses lines; it must not crash the daemon with an unhandled 'error'.
    this.log.on('error', () => undefined)
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  start(): void {
    this.ready = false
    this.log.write(`--- ${new Date().toISOString()} starting ${this.spec.track} replica ${this.index} (${this.spec.image}) on port ${this.port}\n`)
    const child = spawn('/bin/sh', ['-c', this.spec.command], {
      env: {...process.env, ...this.spec.env, PORT: String(this.port), IMAGE: this.spec.image, CANARY_TRACK: this.spec.track},
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    this.child = child
    child.stdout?.pipe(this.log, {end: false})
    child.stderr?.pipe(this.log, {end: false})
    child.on('error', (error) => this.log.write(`spawn failed: ${error.message}\n`))
    child.on('exit', (code, signal) => this.onExit(child, code, signal))
    this.spec.onSpawn?.()
    this.probe()
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return
    this.child = undefined
    this.ready = false
    clearTimeout(this.probeTimer)
    this.lastExit = signal === null ? `exited with code ${code}` : `killed by ${signal}`
    this.log.write(`--- ${new Date().toISOString()} ${this.lastExit}\n`)
    if (this.stopped) return
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.restarts)
    this.restarts++
    this.restartTimer = setTimeout(() => this.start(), delay)
  }

  private probe(): void {
    const child = this.child
    if (child === undefined || this.stopped) return
    fetch(`${this.url}${this.spec.probePath}`, {signal: AbortSignal.timeout(PROBE_TIMEOUT_MS)})
      .then(async (response) => {
        await response.body?.cancel()
        if (response.status < 500 && this.child === child) this.ready = true
      })
      .catch(() => undefined)
      .finally(() => {
        if (!this.ready && this.child === child && !this.stopped) this.probeTimer = setTimeout(() => this.probe(), PROBE_EVERY_MS)
      })
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.probeTimer)
    clearTimeout(this.restartTimer)
    const child = this.child
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const group = child.pid
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      killGroup(group, 'SIGTERM')
      const timer = setTimeout(() => killGroup(group, 'SIGKILL'), STOP_GRACE_MS)
      await exited
      // The shell may exit before what it started (the app drains on SIGTERM): stopped means
      // nothing of the group is left, so wait for the group, not only for the shell.
      const deadline = Date.now() + STOP_GRACE_MS + GROUP_GONE_AFTER_KILL_MS
      while (isProcessGroupAlive(group) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      clearTimeout(timer)
      if (isProcessGroupAlive(group)) killGroup(group, 'SIGKILL')
    }
    this.child = undefined
    this.ready = false
    await new Promise<void>((resolve) => this.log.end(() => resolve()))
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

/** A free TCP port on 127.0.0.1 (the kernel picks; a small race with other programs is accepted). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/** The replicas of one version. */
export class ReplicaSet {
  private constructor(
    readonly spec: ReplicaSpec,
    private readonly replicas: readonly Replica[],
  ) {}

  static async start(spec: ReplicaSpec): Promise<ReplicaSet> {
    const replicas: Replica[] = []
    for (let i = 0; i < spec.replicas; i++) replicas.push(new Replica(spec, i, await freePort()))
    for (const replica of replicas) replica.start()
    return new ReplicaSet(spec, replicas)
  }

  get urls(): string[] {
    return this.replicas.map((r) => r.url)
  }

  get pids(): number[] {
    return this.replicas.flatMap((r) => (r.child?.pid === undefined ? [] : [r.child.pid]))
  }

  readiness(): Readiness {
    const readyReplicas = this.replicas.filter((r) => r.ready).length
    const crashLooping = this.replicas.find((r) => r.restarts >= CRASH_LOOP_RESTARTS)
    const notReady = this.replicas.find((r) => !r.ready)
    const reason = crashLooping !== undefined
      ? `replica ${crashLooping.index} crash-looping (${crashLooping.restarts} restarts, last ${crashLooping.lastExit}); see ${join(this.spec.logDir, `${this.spec.track}-${crashLooping.index}.log`)}`
      : notReady === undefined ? undefined : notReady.lastExit === '' ? `replica ${notReady.index}: GET ${this.spec.probePath} not answering yet` : `replica ${notReady.index} ${notReady.lastExit}, restarting`
    return {
      // Every replica: `start` waits for all of them, and a replica down mid-rollout is a failed check.
      ready: readyReplicas === this.replicas.length && crashLooping === undefined,
      readyReplicas,
      replicas: this.replicas.length,
      ...(reason === undefined ? {} : {reason}),
      ...(crashLooping === undefined ? {} : {failed: true}),
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop()))
  }
}
