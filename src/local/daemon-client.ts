/**
 * The CLI's side of the per-release daemon: start it on demand (detached, so it outlives this
 * command), find it again from `daemon.json`, call its control API, and stop it (`canary down`).
 */
import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {mkdir, rm} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'

import {ConfigError, TimeoutError, UnreachableError, canaryErrorFromJson, fileSystemError, messageOf} from '../errors.js'
import {adminToken} from './admin-token.js'
import {httpCall, type HttpReply} from './http-json.js'
import {readRecord} from './json-record.js'
import {DAEMON_ERROR_KIND, DAEMON_INFO_KIND, REPLICA_GROUPS_KIND, daemonErrorSchema, daemonInfoSchema, replicaGroupsSchema, type DaemonInfo} from './local-records.js'
import {isRecordedProcessAlive} from './processes.js'
import type {ReleasePaths} from './paths.js'

const DAEMON_START_GRACE_MS = 15_000
const CONTROL_TIMEOUT_MS = 30_000

/** Talks to one release's daemon. */
export class DaemonClient {
  private cached: DaemonInfo | undefined
  private cachedToken: string | undefined

  constructor(
    readonly paths: ReleasePaths,
    readonly release: string,
    private readonly specFile: string,
    private readonly readyTimeoutMs: number,
  ) {}

  /** The daemon's address book, or undefined when none was written; ConfigError (exit 3) when it is corrupt. */
  async info(): Promise<DaemonInfo | undefined> {
    return readRecord(this.paths.daemon, daemonInfoSchema, DAEMON_INFO_KIND)
  }

  /** The running daemon; UnreachableError (exit 6) with recovery steps when it is gone. */
  async running(signal: AbortSignal): Promise<DaemonInfo> {
    if (this.cached !== undefined) return this.cached
    const info = await this.info()
    if (info === undefined) throw this.gone('no proxy daemon is running for it')
    if (!isDaemonAlive(info)) throw this.gone(`its proxy daemon (pid ${info.pid}) is not running`)
    try {
      await httpCall('GET', `${info.controlUrl}/healthz`, {timeoutMs: 2000, signal})
    } catch (error) {
      throw this.gone(`its proxy daemon (pid ${info.pid}) does not answer: ${messageOf(error)}`)
    }
    this.cached = info
    return info
  }

  private gone(why: string): UnreachableError {
    return new UnreachableError(`release ${this.release}: ${why}`, {
      subject: this.paths.dir,
      suggestions: [
        '`canary status` shows what the saved rollout state says.',
        '`canary down` stops whatever is left and removes the state; then `canary start` or `canary run` again.',
      ],
    })
  }

  /** Starts the daemon with `stableImage` as stable unless one already runs; waits until it is ready. */
  async ensure(stableImage: string, signal: AbortSignal): Promise<DaemonInfo & {readonly started: boolean}> {
    const existing = await this.info()
    if (existing !== undefined && isDaemonAlive(existing)) return {...(await this.running(signal)), started: false}
    await removeFile(this.paths.daemon)
    await removeFile(this.paths.daemonError)
    await mkdir(this.paths.dir, {recursive: true, mode: 0o700}).catch((error: unknown) => {
      throw fileSystemError(error, this.paths.dir, 'create directory')
    })
    await adminToken(this.paths)
    // `../local/` and not `./`: in the built CLI this code sits in a shared chunk (scripts/build.js).
    const entry = fileURLToPath(new URL(`../local/daemon-main.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url))
    let log: number
    try {
      log = openSync(this.paths.daemonLog, 'a', 0o600)
    } catch (error) {
      throw fileSystemError(error, this.paths.daemonLog, 'open daemon log')
    }
    const child = spawn(process.execPath, [...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []), entry, this.specFile, this.release, stableImage], {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: process.cwd(),
    })
    closeSync(log)
    let exited: string | undefined
    child.once('exit', (code, sig) => (exited = sig === null ? `exit code ${code}` : `signal ${sig}`))
    child.unref()
    const deadline = Date.now() + this.readyTimeoutMs + DAEMON_START_GRACE_MS
    for (;;) {
      signal.throwIfAborted()
      const info = await this.info()
      if (info !== undefined && info.pid === child.pid) return {...(await this.running(signal)), started: true}
      if (exited !== undefined) {
        const recorded = await readRecord(this.paths.daemonError, daemonErrorSchema, DAEMON_ERROR_KIND).catch(() => undefined)
        // A failure with a code of its own (a taken port, a full disk, a spec problem) keeps it.
        const suggestions = [...(Array.isArray(recorded?.['suggestions']) ? recorded['suggestions'] : []), `See ${this.paths.daemonLog}. Nothing was left running.`]
        const known = recorded === undefined ? undefined : canaryErrorFromJson({...recorded, suggestions, message: `release ${this.release}: starting the proxy daemon failed: ${recorded.message}`}, this.paths.dir)
        if (known !== undefined) throw known
        const why = recorded?.message ?? `daemon ${exited}`
        throw new TimeoutError(`release ${this.release}: starting the stable version failed: ${why}`, {
          subject: this.paths.dir,
          suggestions: [`See ${this.paths.daemonLog} and the replica logs in ${this.paths.logs}.`, 'Nothing was left running.'],
        })
      }
      if (Date.now() >= deadline) {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM')
        throw new TimeoutError(`release ${this.release}: the proxy daemon did not become ready in time`, {subject: this.paths.dir, suggestions: [`See ${this.paths.daemonLog}.`]})
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Calls the control API; errors name the daemon and the call. */
  async call<T>(method: string, path: string, signal: AbortSignal, body?: unknown): Promise<T> {
    const info = await this.running(signal)
    const token = await this.token()
    let reply: HttpReply
    try {
      reply = await httpCall(method, `${info.controlUrl}${path}`, {token, ...(body === undefined ? {} : {body}), timeoutMs: CONTROL_TIMEOUT_MS, signal})
    } catch (error) {
      throw new UnreachableError(`release ${this.release}: proxy daemon ${method} ${path} failed: ${messageOf(error)}`, {cause: error, subject: this.paths.dir})
    }
    if (reply.status === 400) {
      const refused = JSON.parse(reply.text) as {error: string; suggestions?: string[]}
      throw new ConfigError(refused.error, [], {subject: this.paths.dir, suggestions: refused.suggestions ?? []})
    }
    if (reply.status >= 500) {
      // The daemon reports its own I/O and listen failures with their codes (e.g. E_IO for a full disk).
      const failed = parseJson(reply.text) as {error?: unknown; code?: unknown; suggestions?: unknown; path?: unknown; errno?: unknown; address?: unknown} | undefined
      const known = failed === undefined ? undefined : canaryErrorFromJson({...failed, message: `release ${this.release}: proxy daemon ${method} ${path} failed: ${String(failed.error)}`}, this.paths.dir)
      if (known !== undefined) throw known
    }
    if (reply.status < 200 || reply.status >= 300) throw new UnreachableError(`release ${this.release}: proxy daemon ${method} ${path} failed: ${reply.status} ${reply.text}`, {subject: this.paths.dir})
    return JSON.parse(reply.text) as T
  }

  /** The admin token (read once per process). */
  async token(): Promise<string> {
    this.cachedToken ??= await adminToken(this.paths)
    return this.cachedToken
  }

  /** Stops the daemon (and with it the proxy and every replica); returns what was stopped. */
  async stop(signal: AbortSignal): Promise<string[]> {
    const info = await this.info()
    if (info === undefined || !isDaemonAlive(info)) {
      await removeFile(this.paths.daemon)
      return this.stopOrphans()
    }
    await this.call('POST', '/shutdown', signal, {}).catch(() => signalProcess(info.pid, 'SIGTERM'))
    const deadline = Date.now() + 10_000
    while (isDaemonAlive(info) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    if (isDaemonAlive(info)) signalProcess(info.pid, 'SIGKILL')
    await removeFile(this.paths.daemon)
    return [`proxy daemon pid ${info.pid} (${info.proxyUrl})`, ...(await this.stopOrphans())]
  }

  /** Replicas whose daemon died (kill -9) keep running; their process groups are on file. */
  private async stopOrphans(): Promise<string[]> {
    const groups = await readRecord(this.paths.replicaGroups, replicaGroupsSchema, REPLICA_GROUPS_KIND)
    if (groups === undefined) return []
    const stopped: string[] = []
    for (const group of groups) {
      const {pid, identity} = typeof group === 'number' ? {pid: group, identity: undefined} : group
      // A group whose leader is gone, or whose pid now belongs to another program, is not ours to signal.
      if (!isRecordedProcessAlive(pid, identity)) continue
      try {
        // Negative pid: the whole process group (`sh -c` and what it started).
        process.kill(-pid, 'SIGKILL')
        stopped.push(`replica process group ${pid}`)
      } catch {
        // Gone meanwhile.
      }
    }
    await removeFile(this.paths.replicaGroups)
    return stopped
  }
}

/** The daemon a record names is running: same pid and, when recorded, same process identity. */
function isDaemonAlive(info: DaemonInfo): boolean {
  return isRecordedProcessAlive(info.pid, info.identity)
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // Gone meanwhile.
  }
}

async function removeFile(file: string): Promise<void> {
  await rm(file, {force: true}).catch((error: unknown) => {
    throw fileSystemError(error, file, 'remove')
  })
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
