/**
 * One version's servers on this machine: replicas of `local.command` (supervised), or URLs of
 * servers started elsewhere (`local.upstreams`, looked up by full image reference, then by tag).
 */
import {ConfigError} from '../errors.js'
import type {Readiness, Track} from '../rollout/ports.js'
import type {Release} from '../release/release.js'
import {ReplicaSet} from './supervisor.js'

/** A running (or adopted) version. */
export interface TrackServers {
  readonly track: Track
  readonly image: string
  readonly urls: readonly string[]
  readonly pids: readonly number[]
  readiness(): Readiness
  stop(): Promise<void>
  /** The same servers, now serving as `track` (after a promotion). */
  as(track: Track): TrackServers
}

/** Starts (or looks up) the servers of `image` for `track`. */
export async function startTrack(release: Release, track: Track, image: string, logDir: string, onSpawn?: () => void): Promise<TrackServers> {
  const local = release.local
  if (local === undefined) throw new ConfigError(`release ${release.name}: no spec.local section`, [], {suggestions: ['Add local: {command: …} or local: {upstreams: …}.']})
  if (local.command !== undefined) {
    const set = await ReplicaSet.start({track, image, command: local.command, replicas: Math.max(1, release.replicas), probePath: release.probe?.path ?? '/', env: release.env, logDir, ...(onSpawn === undefined ? {} : {onSpawn})})
    return replicaTrack(set, track)
  }
  const upstreams = local.upstreams ?? {}
  const tag = image.includes(':') ? image.slice(image.lastIndexOf(':') + 1) : image
  const urls = upstreams[image] ?? upstreams[tag]
  if (urls === undefined) {
    throw new ConfigError(`release ${release.name}: local.upstreams has no servers for ${image}`, [], {
      suggestions: [`Add \`${tag}: [http://127.0.0.1:PORT]\` (or the full reference) under spec.local.upstreams. Known: ${Object.keys(upstreams).join(', ') || 'none'}.`],
    })
  }
  return upstreamTrack(track, image, urls, release.probe?.path ?? '/')
}

function replicaTrack(set: ReplicaSet, track: Track): TrackServers {
  return {
    track,
    image: set.spec.image,
    get urls() {
      return set.urls
    },
    get pids() {
      return set.pids
    },
    readiness: () => set.readiness(),
    stop: () => set.stop(),
    as: (next) => replicaTrack(set, next),
  }
}

/** Servers someone else runs: probed in the background, never started or stopped by us. */
function upstreamTrack(track: Track, image: string, urls: readonly string[], probePath: string): TrackServers {
  const up = new Map<string, boolean>()
  let stopped = false
  const probeAll = async () => {
    await Promise.all(urls.map(async (url) => {
      try {
        const response = await fetch(`${url.replace(/\/$/, '')}${probePath}`, {signal: AbortSignal.timeout(1000)})
        await response.body?.cancel()
        up.set(url, response.status < 500)
      } catch {
        up.set(url, false)
      }
    }))
  }
  const loop = async () => {
    while (!stopped) {
      await probeAll()
      await new Promise((resolve) => setTimeout(resolve, 500).unref())
    }
  }
  void loop()
  const make = (t: Track): TrackServers => ({
    track: t,
    image,
    urls,
    pids: [],
    readiness: () => {
      const readyReplicas = urls.filter((u) => up.get(u) === true).length
      return {ready: readyReplicas > 0, readyReplicas, replicas: urls.length, ...(readyReplicas === 0 ? {reason: `no server of ${image} answers GET ${probePath}`} : {})}
    },
    stop: async () => {
      stopped = true
    },
    as: make,
  })
  return make(track)
}
