/**
 * Traefik CRDs (v2 `traefik.containo.us`, v3 `traefik.io`): the apex IngressRoute sends the host/path
 * to a weighted TraefikService listing the stable and canary Services with integer weights
 * (traefik docs reference/routing-configuration/kubernetes/crd/http/traefikservice.md). With mirroring,
 * the apex TraefikService mirrors and wraps the weighted one. Finalizing renders stable only.
 */
import {deleteOwned} from '../../kube/apply.js'
import type {KubeClient} from '../../kube/client.js'
import type {ObjectRef} from '../../kube/objects.js'
import {applyAllOwned, routingState, zeroWeights} from '../kube-routing.js'
import {notOwnedError} from '../../kube/apply.js'
import {isManagedByCanary} from '../../kube/objects.js'
import {names} from '../../render/names.js'
import {buildTraefikCrd} from './objects.js'
import type {Release} from '../../release/release.js'
import {weights as makeWeights, type Weights} from '../../rollout/core/weights.js'
import type {TrafficRouter} from '../../rollout/ports.js'

interface WeightedServices {
  services?: Array<{name?: string; weight?: number}>
}

/** Splits traffic with a weighted TraefikService. */
export class TraefikCrdRouter implements TrafficRouter {
  readonly kind = 'traefik'

  constructor(private readonly client: KubeClient, private readonly release: Release) {}

  private serviceRef(name: string): ObjectRef {
    return {apiVersion: `${this.release.ingress?.traefikApiGroup ?? 'traefik.io'}/v1alpha1`, kind: 'TraefikService', namespace: this.release.namespace, name}
  }

  /** The TraefikService holding the weights: the inner one when mirroring wraps it. */
  private weightedRef(): ObjectRef {
    const n = names(this.release)
    return this.serviceRef(this.release.mirror === undefined ? n.apex : n.weighted)
  }

  async reconcile(signal: AbortSignal): Promise<void> {
    await this.setWeights(await this.getWeights(signal), signal)
  }

  async setWeights(weights: Weights, signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildTraefikCrd(this.release, routingState(this.release, weights)), this.release, signal)
  }

  async getWeights(signal: AbortSignal): Promise<Weights> {
    const live = await this.client.read(this.weightedRef(), signal)
    if (live === undefined) return zeroWeights(this.release)
    if (!isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    return parseTraefikWeights((live.spec as {weighted?: WeightedServices} | undefined)?.weighted, names(this.release).canary, this.release.totalWeight)
  }

  async finalize(_outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildTraefikCrd(this.release, routingState(this.release, undefined)), this.release, signal)
    if (this.release.mirror !== undefined) await deleteOwned(this.client, this.serviceRef(names(this.release).weighted), this.release.name, signal)
  }
}

/** Canary weight out of the sum of the weighted services (Traefik's WRR is proportional). */
export function parseTraefikWeights(weighted: WeightedServices | undefined, canaryService: string, fallbackTotal: number): Weights {
  const services = weighted?.services ?? []
  const total = services.reduce((sum, s) => sum + (s.weight ?? 1), 0)
  const canary = services.find((s) => s.name === canaryService)
  if (canary === undefined || total === 0) return makeWeights(0, total === 0 ? fallbackTotal : total)
  return makeWeights(canary.weight ?? 1, total)
}
