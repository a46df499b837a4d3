/**
 * TrafficRouter for the bundled proxy, through its admin API (docs/proxy.md): weights are set with
 * `PUT /api/services/{service}/weights` and always read back from `GET /api/state`, never assumed.
 * Versions are named by track, `stable` and `canary` (src/routers/proxy/objects.ts).
 */
import {UnreachableError, messageOf} from '../errors.js'
import {httpCall} from './http-json.js'
import {stableWeight, weights, type Weights} from '../rollout/core/weights.js'
import type {TrafficRouter} from '../rollout/ports.js'
import type {ProxyAdminEndpoint} from './admin-token.js'
import type {Release} from '../release/release.js'

interface VersionState {
  readonly name: string
  readonly weight: number
}

interface ServiceState {
  readonly versions: readonly VersionState[]
}

const ADMIN_TIMEOUT_MS = 5000

/** Weights on the bundled proxy, set and read back through its admin API. */
export class ProxyRouter implements TrafficRouter {
  readonly kind = 'proxy'

  constructor(
    private readonly release: Release,
    private readonly admin: ProxyAdminEndpoint,
  ) {}

  async reconcile(signal: AbortSignal): Promise<void> {
    await this.service(signal)
  }

  async setWeights(target: Weights, signal: AbortSignal): Promise<void> {
    const service = await this.service(signal)
    const hasCanary = service.versions.some((v) => v.name === 'canary')
    if (!hasCanary) {
      if (target.canary === 0) return
      throw new UnreachableError(`proxy service ${this.release.name}: set weights failed: the canary has no servers in the proxy`, {suggestions: ['`canary status` shows whether the canary is running.']})
    }
    await this.request('PUT', `/api/services/${encodeURIComponent(this.release.name)}/weights`, signal, {stable: stableWeight(target), canary: target.canary})
  }

  async getWeights(signal: AbortSignal): Promise<Weights> {
    const service = await this.service(signal)
    const canary = service.versions.find((v) => v.name === 'canary')
    const total = service.versions.reduce((sum, v) => sum + v.weight, 0)
    if (canary === undefined || total === 0) return weights(0, this.release.totalWeight)
    return weights(canary.weight, total)
  }

  async finalize(_outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void> {
    await this.setWeights(weights(0, this.release.totalWeight), signal)
  }

  private async service(signal: AbortSignal): Promise<ServiceState> {
    const state = (await this.request('GET', '/api/state', signal)) as {services?: Record<string, ServiceState>}
    const service = state.services?.[this.release.name]
    if (service === undefined) throw new UnreachableError(`proxy ${this.admin.url}: service ${this.release.name} not found in its config`, {suggestions: ['`canary down` then `canary start` rebuilds the proxy config.']})
    return service
  }

  private async request(method: string, path: string, signal: AbortSignal, body?: unknown): Promise<unknown> {
    let reply
    try {
      reply = await httpCall(method, `${this.admin.url}${path}`, {token: this.admin.token, ...(body === undefined ? {} : {body}), timeoutMs: ADMIN_TIMEOUT_MS, signal})
    } catch (error) {
      throw new UnreachableError(`proxy admin ${this.admin.url}: ${method} ${path} failed: ${messageOf(error)}`, {cause: error})
    }
    if (reply.status < 200 || reply.status >= 300) throw new UnreachableError(`proxy admin ${this.admin.url}: ${method} ${path} failed: ${reply.status} ${reply.text}`)
    return JSON.parse(reply.text) as unknown
  }
}
