/**
 * Optional active health checks: `GET healthCheck.path` on every server of a service each
 * `intervalMs`; a 2xx/3xx answer within `timeoutMs` marks it up, anything else down. Passive health
 * (runtime.ts) works independently. Timers are unref'd and stopped when a config generation ends.
 * Probes use their own connection per server, not the data plane's pool: behind a pool saturated
 * by slow clients a probe would wait, time out and take a healthy server out.
 */
import {Client} from 'undici'

import type {ProxyRuntime} from './runtime.js'

export class HealthChecker {
  private readonly timers: NodeJS.Timeout[] = []
  private readonly clients: Client[] = []
  /** Set by stop(): a probe cut short by it must not mark its server down. */
  private stopped = false

  constructor(runtime: ProxyRuntime) {
    for (const service of runtime.services.values()) {
      const check = service.config.healthCheck
      if (check === undefined) continue
      for (const version of service.versions) {
        for (const server of version.servers) {
          const client = new Client(server.origin, {pipelining: 1, connect: {timeout: check.timeoutMs}, keepAliveTimeout: Math.min(4000, check.intervalMs)})
          this.clients.push(client)
          const probe = () => {
            client
              .request({path: server.basePath + check.path, method: 'GET', headersTimeout: check.timeoutMs, bodyTimeout: check.timeoutMs, signal: AbortSignal.timeout(check.timeoutMs)})
              .then(
                async (response) => {
                  if (!this.stopped) server.health.activeUp = response.statusCode < 400
                  await response.body.dump().catch(() => undefined)
                },
                () => {
                  if (!this.stopped) server.health.activeUp = false
                },
              )
          }
          const timer = setInterval(probe, check.intervalMs)
          timer.unref()
          this.timers.push(timer)
          probe()
        }
      }
    }
  }

  stop(): void {
    this.stopped = true
    for (const timer of this.timers) clearInterval(timer)
    this.timers.length = 0
    for (const client of this.clients) void client.destroy().catch(() => undefined)
    this.clients.length = 0
  }
}
