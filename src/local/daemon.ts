/**
 * The per-release daemon: one detached process that outlives the CLI invocations. It runs the
 * bundled proxy in-process (`startProxy`, #3), supervises the stable and canary replicas, and
 * answers a small control API (token-protected, loopback) that the local Target uses:
 *
 *   GET /healthz · GET /tracks · PUT /tracks/canary {image} · DELETE /tracks/canary ·
 *   POST /promote {image} · POST /shutdown
 *
 * Traffic weights are not its business: the local TrafficRouter sets them on the proxy's admin API.
 * Its address book (`daemon.json`) is written once the stable version is ready and the proxy listens.
 */
import {createHash, timingSafeEqual} from 'node:crypto'
import {rm, writeFile} from 'node:fs/promises'
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'

import {stringify} from 'yaml'

import {ConfigError, isCanaryError, messageOf, systemError} from '../errors.js'
import {parseProxyConfig} from '../proxy/config.js'
import {startProxy, type RunningProxy} from '../proxy/server.js'
import {buildProxyConfig} from '../routers/proxy/objects.js'
import {weights as weightsOf, type Weights} from '../rollout/core/weights.js'
import {loadRelease} from '../release/load-release.js'
import {adminToken} from './admin-token.js'
import {writeAtomically} from './file-store.js'
import type {DaemonInfo} from './local-records.js'
import {releasePaths} from './paths.js'
import {processIdentity} from './processes.js'
import {startTrack, type TrackServers} from './tracks.js'

/** Proxy health-check period on this machine (the proxy's default is 5 s). */
const LOCAL_HEALTH_CHECK_INTERVAL_MS = 500

/** A track as the control API reports it. */
export interface TrackReport {
  readonly image: string
  readonly urls: readonly string[]
  readonly pids: readonly number[]
  readonly readiness: ReturnType<TrackServers['readiness']>
}

/** `GET /tracks`. */
export interface TracksReport {
  readonly stable: TrackReport
  readonly canary: TrackReport | null
}

/** Runs the daemon until shut down. Throws (and records daemon-error.json) when it cannot start. */
export async function runDaemon(input: {readonly specFile: string; readonly releaseName: string; readonly stableImage: string}): Promise<void> {
  const {release} = await loadRelease(input.specFile)
  const paths = releasePaths(input.specFile, input.releaseName)
  const log = (event: Record<string, unknown>) => {
    try {
      process.stderr.write(`${JSON.stringify({time: new Date().toISOString(), ...event})}\n`)
    } catch {
      // The log is a file on the release's disk: a full disk must not take the proxy down with it.
    }
  }
  const token = await adminToken(paths)
  await rm(paths.daemonError, {force: true})
  const env = {...process.env, CANARY_ADMIN_TOKEN: token}
  let stable: TrackServers | undefined
  let canary: TrackServers | undefined
  let proxy: RunningProxy | undefined
  const readyTimeoutMs = release.local?.readyTimeoutMs ?? 60_000

  const configFor = (current: Weights): string => {
    const config = buildProxyConfig(release, {
      stableServers: stable?.urls ?? [],
      ...(canary === undefined ? {} : {canaryServers: canary.urls}),
      weights: current,
      adminListen: release.local?.adminListen ?? '127.0.0.1:0',
      adminToken: '${CANARY_ADMIN_TOKEN}',
    }) as {services: Record<string, {healthCheck?: {path: string; intervalMs?: number}}>}
    // Locally a health check is cheap, and a new canary gets no traffic until its first one passes.
    const healthCheck = config.services[release.name]?.healthCheck
    if (healthCheck !== undefined) healthCheck.intervalMs = LOCAL_HEALTH_CHECK_INTERVAL_MS
    return stringify(config, {lineWidth: 0})
  }

  // Writes are chained and read the tracks when they run, so the last write always has the latest groups.
  let groupsWritten: Promise<void> = Promise.resolve()
  const recordGroups = (): Promise<void> => (groupsWritten = groupsWritten
    .then(() => writeAtomically(paths.replicaGroups, `${JSON.stringify([...(stable?.pids ?? []), ...(canary?.pids ?? [])].map((pid) => ({pid, identity: processIdentity(pid)})))}\n`))
    .catch(() => undefined))
  const applyConfig = async (next: Weights): Promise<void> => {
    await recordGroups()
    const text = configFor(next)
    await writeAtomically(paths.proxyConfig, text)
    const config = parseProxyConfig(text, paths.proxyConfig, env)
    if (proxy === undefined) proxy = await startProxy(config, {configFile: paths.proxyConfig, env, log})
    else await proxy.reload(config)
  }

  let stopping: Promise<void> | undefined
  // Everything is closed afterwards, so the process ends by itself once the event loop is empty.
  const shutdown = (): Promise<void> => (stopping ??= stopAll())
  const stopAll = async () => {
    log({level: 'info', msg: 'shutting down'})
    await Promise.allSettled([canary?.stop(), stable?.stop()])
    await proxy?.close()
    control.close()
    await rm(paths.daemon, {force: true})
  }

  try {
    stable = await startTrack(release, 'stable', input.stableImage, paths.logs, () => void recordGroups())
    await waitReady(stable, readyTimeoutMs)
    await applyConfig(weightsOf(0, release.totalWeight))
  } catch (raw) {
    // Keep the error's code (a taken port, a full disk) so the CLI exits with it, not with a timeout.
    const error = systemError(raw) ?? raw
    const record = isCanaryError(error) ? {...error.toJSON(), message: error.message} : {message: messageOf(error)}
    await writeFile(paths.daemonError, JSON.stringify(record), {mode: 0o600}).catch(() => undefined)
    await Promise.allSettled([stable?.stop(), proxy?.close()])
    throw error
  }

  // Ready means the proxy can send it traffic too: its health check must have passed.
  const report = (t: TrackServers): TrackReport => {
    const readiness = t.readiness()
    const version = proxy?.state().services[release.name]?.versions.find((v) => v.name === t.track)
    if (!readiness.ready || version === undefined || version.healthy) return {image: t.image, urls: t.urls, pids: t.pids, readiness}
    return {image: t.image, urls: t.urls, pids: t.pids, readiness: {...readiness, ready: false, reason: 'waiting for the proxy health check'}}
  }
  const expected = createHash('sha256').update(token).digest()
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://daemon').pathname
    const method = req.method ?? 'GET'
    if (path === '/healthz') return send(res, 200, {ok: true, pid: process.pid})
    const presented = (req.headers.authorization ?? '').replace(/^Bearer /, '')
    if (!timingSafeEqual(createHash('sha256').update(presented).digest(), expected)) return send(res, 401, {error: 'missing or wrong bearer token'})
    if (path === '/tracks' && method === 'GET') return send(res, 200, {stable: report(stable!), canary: canary === undefined ? null : report(canary)} satisfies TracksReport)
    if (path === '/tracks/canary' && method === 'PUT') {
      const {image} = JSON.parse(await body(req)) as {image: string}
      if (canary?.image !== image) {
        await canary?.stop()
        canary = undefined
        canary = await startTrack(release, 'canary', image, paths.logs, () => void recordGroups())
        await applyConfig(weightsOf(0, release.totalWeight))
      }
      return send(res, 200, report(canary))
    }
    if (path === '/tracks/canary' && method === 'DELETE') {
      if (canary !== undefined) {
        const old = canary
        canary = undefined
        await applyConfig(weightsOf(0, release.totalWeight))
        await old.stop()
      }
      return send(res, 200, {canary: null})
    }
    if (path === '/promote' && method === 'POST') {
      const {image} = JSON.parse(await body(req)) as {image: string}
      if (canary !== undefined && canary.image === image) {
        const old = stable!
        // Route everything to the new servers before stopping the old ones.
        stable = canary.as('stable')
        canary = undefined
        await applyConfig(weightsOf(0, release.totalWeight))
        await old.stop()
        await writeInfo()
      } else if (stable!.image !== image) {
        return send(res, 409, {error: `cannot promote ${image}: the canary runs ${canary?.image ?? 'nothing'}`})
      }
      return send(res, 200, report(stable!))
    }
    if (path === '/shutdown' && method === 'POST') {
      send(res, 200, {ok: true})
      setImmediate(() => void shutdown())
      return
    }
    return send(res, 404, {error: `no control endpoint ${method} ${path}`})
  }
  const control = createServer((req, res) => {
    handle(req, res).catch((raw: unknown) => {
      // A spec problem found here (e.g. no upstream for an image) is the user's to fix: say so.
      // Other failures keep their code (E_IO for a full disk…) for the CLI to exit with.
      const error = systemError(raw) ?? raw
      if (error instanceof ConfigError) send(res, 400, {error: error.message, suggestions: error.suggestions})
      else if (isCanaryError(error)) send(res, 500, {...error.toJSON(), error: error.message})
      else send(res, 500, {error: messageOf(error)})
    })
  })
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve))
  const address = control.address()
  const controlUrl = typeof address === 'object' && address !== null ? `http://127.0.0.1:${address.port}` : ''

  const writeInfo = async () => {
    const identity = processIdentity(process.pid)
    const info: DaemonInfo = {pid: process.pid, ...(identity === undefined ? {} : {identity}), controlUrl, proxyUrl: proxy!.url, adminUrl: proxy!.adminUrl, stableImage: stable!.image, startedAt: new Date().toISOString()}
    await writeAtomically(paths.daemon, `${JSON.stringify(info, null, 2)}\n`)
  }
  await writeInfo()
  log({level: 'info', msg: 'daemon ready', release: release.name, proxy: proxy!.url, admin: proxy!.adminUrl, control: controlUrl})
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => void shutdown())
  }
}

async function waitReady(track: TrackServers, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const readiness = track.readiness()
    if (readiness.ready) return
    if (readiness.failed === true || Date.now() >= deadline) {
      throw new Error(`${track.track} ${track.image} not ready after ${Math.round(timeoutMs / 1000)} s: ${readiness.reason ?? 'probe failing'}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function send(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, {'content-type': 'application/json'})
  res.end(JSON.stringify(value))
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
