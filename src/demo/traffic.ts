/**
 * Steady synthetic traffic for `canary demo`: `ratePerSecond` GET requests, evenly spaced, over
 * keep-alive connections. Counts responses per version and status, for the demo's summary.
 */
import {Agent, request} from 'undici'

/** What the traffic saw. */
export interface TrafficCounts {
  sent: number
  byVersion: Record<string, {ok: number; failed: number}>
  transportErrors: number
}

/** Running traffic; `stop` waits for requests in flight. */
export interface Traffic {
  readonly counts: TrafficCounts
  stop(): Promise<void>
}

/** Starts `ratePerSecond` evenly spaced GETs of `url` until `stop()`. */
export function startTraffic(url: string, ratePerSecond: number): Traffic {
  const agent = new Agent({connections: 16, keepAliveTimeout: 10_000})
  const counts: TrafficCounts = {sent: 0, byVersion: {}, transportErrors: 0}
  const inFlight = new Set<Promise<void>>()
  const one = async () => {
    counts.sent++
    try {
      const response = await request(url, {dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000})
      const text = await response.body.text()
      let version = 'unknown'
      try {
        version = (JSON.parse(text) as {version?: string}).version ?? version
      } catch {
        // A proxy error page, not the app.
      }
      const entry = (counts.byVersion[version] ??= {ok: 0, failed: 0})
      if (response.statusCode >= 500) entry.failed++
      else entry.ok++
    } catch {
      counts.transportErrors++
    }
  }
  const timer = setInterval(() => {
    const p = one().finally(() => inFlight.delete(p))
    inFlight.add(p)
  }, Math.max(1, Math.round(1000 / ratePerSecond)))
  let stopping: Promise<void> | undefined
  return {
    counts,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(timer)
        await Promise.allSettled([...inFlight])
        await agent.close()
      })()),
  }
}
