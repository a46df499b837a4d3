/**
 * The use case behind `canary demo`: bring the release's data plane up, send steady traffic
 * through it, run the rollout to its end, then take everything down, whatever happened.
 */
import type {RolloutSession, RunReport} from '../rollout/services.js'
import {downRelease, runRollout} from '../rollout/services.js'
import {startTraffic, type Traffic, type TrafficCounts} from './traffic.js'

/** `canary demo --json`: how the demo rollout ended, and the traffic it served. */
export interface DemoResult extends RunReport {
  readonly traffic: TrafficCounts
}

/** How long the clean-up may take (stopping the daemon alone waits up to 10 s for it). */
const CLEANUP_TIMEOUT_MS = 30_000

/** Runs the demo rollout of `canaryImage` under `ratePerSecond` requests/s; `onTraffic` is told where the traffic goes. */
export async function runDemo(session: RolloutSession, input: {readonly canaryImage: string; readonly ratePerSecond: number; readonly timeoutMs: number; readonly signal: AbortSignal; readonly onTraffic?: (proxyUrl: string) => void}): Promise<DemoResult> {
  let traffic: Traffic | undefined
  try {
    await session.ports.prepare(session.specImage, input.signal)
    const proxyUrl = (await session.ports.endpoints()).proxyUrl ?? ''
    traffic = startTraffic(proxyUrl, input.ratePerSecond)
    input.onTraffic?.(proxyUrl)
    const report = await runRollout(session, {canaryImage: input.canaryImage, timeoutMs: input.timeoutMs, signal: input.signal})
    await traffic.stop()
    return {...report, traffic: traffic.counts}
  } finally {
    // Nothing of the demo may outlive it, also after Ctrl-C: the clean-up has its own deadline,
    // not the command's signal (aborted by then); a second Ctrl-C still quits at once.
    await traffic?.stop().catch(() => undefined)
    await downRelease(session, {signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS)})
  }
}
