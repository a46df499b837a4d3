/**
 * Optional active health checks: `GET healthCheck.path` on every server of a service each
 * `intervalMs`; a 2xx/3xx answer within `timeoutMs` marks it up, anything else down. Passive health
 * (runtime.ts) works independently. Timers are unref'd and stopped when a config generation ends.
 */
import type {ProxyRuntime} from './runtime.js'

export class HealthChecker {
  private readonly timers: NodeJS.Timeout[] = []

  constructor(runtime: ProxyRuntime) {
    for (const service of runtime.services.values()) {
      const check = service.config.healthCheck
      if (check === undefined) continue
      for (const version of service.versions) {
        for (const server of version.servers) {
          const probe = () => {
            server.pool
              .request({path: server.basePath + check.path, method: 'GET', headersTimeout: check.timeoutMs, bodyTimeout: check.timeoutMs, signal: AbortSignal.timeout(check.timeoutMs)})
              .then(
                async (response) => {
                  server.health.activeUp = response.statusCode < 400
                  await response.body.dump().catch(() => undefined)
                },
                () => {
                  server.health.activeUp = false
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
    for (const timer of this.timers) clearInterval(timer)
    this.timers.length = 0
  }
}
