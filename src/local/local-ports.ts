/** All ports of a release on the local target: daemon-backed target, proxy router and metrics, file store and lock. */
import {rm, stat} from 'node:fs/promises'

import {fileSystemError} from '../errors.js'
import type {Weights} from '../rollout/core/weights.js'
import {ProxyRouter} from './proxy-router.js'
import {acquireLockFile} from './lock-file.js'
import {DaemonClient} from './daemon-client.js'
import {FileRolloutStore} from './file-store.js'
import {LocalTarget} from './local-target.js'
import {releasePaths} from './paths.js'
import {ProxyMetricSource} from './proxy-metrics.js'
import type {RolloutState} from '../rollout/core/types.js'
import {rolloutStateSchema} from '../rollout/state-schema.js'
import type {MetricSource, RolloutPorts, TargetInput, TrafficRouter} from '../rollout/ports.js'

/** How long `canary down` waits for a running command's tick before giving up (exit 5). */
const DOWN_LOCK_WAIT_MS = 10_000

export async function createLocalPorts(input: TargetInput): Promise<RolloutPorts> {
  const {release, specFile} = input
  const paths = releasePaths(specFile, release.name)
  const daemon = new DaemonClient(paths, release.name, specFile, release.local?.readyTimeoutMs ?? 60_000)
  const subject = `release ${release.name}`
  let startedHere = false
  // Router and metrics find the proxy's admin API through the daemon, lazily: a command that only
  // reads state must not fail before it can explain that the daemon is gone.
  const admin = async (signal: AbortSignal) => ({url: (await daemon.running(signal)).adminUrl, token: await daemon.token()})
  const router: TrafficRouter = {
    kind: 'proxy',
    reconcile: async (signal) => new ProxyRouter(release, await admin(signal)).reconcile(signal),
    setWeights: async (w: Weights, signal) => new ProxyRouter(release, await admin(signal)).setWeights(w, signal),
    getWeights: async (signal) => new ProxyRouter(release, await admin(signal)).getWeights(signal),
    finalize: async (outcome, signal) => new ProxyRouter(release, await admin(signal)).finalize(outcome, signal),
  }
  const acquireLock = (waitMs: number, signal: AbortSignal) => acquireLockFile(paths.operationLock, {waitMs, operation: process.argv.slice(2, 3).join(' ') || 'canary', subject, signal})
  const metrics: MetricSource = {
    kind: 'proxy',
    read: async (window, signal) => new ProxyMetricSource(release.name, await admin(signal)).read(window, signal),
  }
  return {
    router,
    target: new LocalTarget(daemon),
    metrics,
    store: new FileRolloutStore<RolloutState>(paths.state, subject, rolloutStateSchema),
    lock: {acquire: acquireLock},
    prepare: async (stableImage, signal) => {
      startedHere = (await daemon.ensure(stableImage, signal)).started || startedHere
    },
    undoPrepare: async (signal) => {
      if (startedHere) await daemon.stop(signal)
      startedHere = false
    },
    check: async (signal) => {
      await daemon.running(signal)
    },
    endpoints: async () => {
      const info = await daemon.info()
      return info === undefined ? {} : {proxyUrl: info.proxyUrl}
    },
    down: async (signal) => {
      const existed = await stat(paths.dir).then(() => true, () => false)
      // Not under a running command's feet: wait for its tick (a `canary run` lets go between ticks).
      const release = await acquireLock(DOWN_LOCK_WAIT_MS, signal)
      try {
        const stopped = await daemon.stop(signal)
        await rm(paths.dir, {recursive: true, force: true}).catch((error: unknown) => {
          throw fileSystemError(error, paths.dir, 'remove')
        })
        return {stopped: existed ? [...stopped, `state ${paths.dir}`] : stopped}
      } finally {
        await release()
      }
    },
  }
}
