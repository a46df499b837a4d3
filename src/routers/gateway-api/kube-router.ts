/**
 * Gateway API: one HTTPRoute whose weighted rule lists the stable and canary Services as
 * backendRefs; weights are proportional (weight / sum), not percentages
 * (kubernetes-sigs/gateway-api apis/v1/httproute_types.go, guides/traffic-splitting.md).
 * Header/cookie overrides are rules before the weighted one. Finalizing renders stable only.
 */
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary} from '../../kube/objects.js'
import {applyAllOwned, routingState, zeroWeights} from '../kube-routing.js'
import {notOwnedError} from '../../kube/apply.js'
import {names} from '../../render/names.js'
import {buildHttpRoute} from './objects.js'
import type {Release} from '../../release/release.js'
import {weights as makeWeights, type Weights} from '../../rollout/core/weights.js'
import type {TrafficRouter} from '../../rollout/ports.js'

interface HttpRouteRule {
  matches?: Array<{headers?: unknown[]}>
  backendRefs?: Array<{name?: string; weight?: number}>
}

/** Splits traffic with HTTPRoute backendRef weights. */
export class GatewayApiRouter implements TrafficRouter {
  readonly kind = 'gateway-api'

  constructor(private readonly client: KubeClient, private readonly release: Release) {}

  async reconcile(signal: AbortSignal): Promise<void> {
    await this.setWeights(await this.getWeights(signal), signal)
  }

  async setWeights(weights: Weights, signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildHttpRoute(this.release, routingState(this.release, weights)), this.release, signal)
  }

  async getWeights(signal: AbortSignal): Promise<Weights> {
    const live = await this.client.read({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', namespace: this.release.namespace, name: names(this.release).apex}, signal)
    if (live === undefined) return zeroWeights(this.release)
    if (!isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    const n = names(this.release)
    return parseHttpRouteWeights((live.spec as {rules?: HttpRouteRule[]} | undefined)?.rules ?? [], n.stable, n.canary, this.release.totalWeight)
  }

  async finalize(_outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildHttpRoute(this.release, routingState(this.release, undefined)), this.release, signal)
  }
}

/** The split of the weighted rule: the rule without header matches that references the stable Service. Weight defaults to 1. */
export function parseHttpRouteWeights(rules: readonly HttpRouteRule[], stableService: string, canaryService: string, fallbackTotal: number): Weights {
  const weighted = rules.find((r) => (r.matches ?? []).every((m) => (m.headers ?? []).length === 0) && (r.backendRefs ?? []).some((b) => b.name === stableService))
  const refs = weighted?.backendRefs ?? []
  const total = refs.reduce((sum, b) => sum + (b.weight ?? 1), 0)
  const canary = refs.find((b) => b.name === canaryService)
  if (canary === undefined || total === 0) return makeWeights(0, total === 0 ? fallbackTotal : total)
  return makeWeights(canary.weight ?? 1, total)
}
