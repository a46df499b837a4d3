/**
 * Traefik 1.x: one Ingress lists the stable and canary Services under the same path and the
 * `traefik.ingress.kubernetes.io/service-weights` annotation gives the canary's percentage; the
 * omitted stable backend gets the remainder of 100 % (traefik v1.7 docs/configuration/backends/
 * kubernetes.md). Finalizing renders the stable backend only, without the annotation.
 */
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary} from '../../kube/objects.js'
import {applyAllOwned, routingState, zeroWeights} from '../kube-routing.js'
import {notOwnedError} from '../../kube/apply.js'
import {names} from '../../render/names.js'
import {buildTraefikV1Ingress} from './objects.js'
import type {Release} from '../../release/release.js'
import {weights as makeWeights, type Weights} from '../../rollout/core/weights.js'
import type {TrafficRouter} from '../../rollout/ports.js'

const SERVICE_WEIGHTS = 'traefik.ingress.kubernetes.io/service-weights'
/** service-weights carries at most 3 decimals of a percent: 100 000 units per 100 %. */
const THOUSANDTHS_OF_PERCENT = 100_000

/** Splits traffic with the Traefik 1.x service-weights annotation. */
export class TraefikV1Router implements TrafficRouter {
  readonly kind = 'traefik-v1'

  constructor(private readonly client: KubeClient, private readonly release: Release) {}

  async reconcile(signal: AbortSignal): Promise<void> {
    await this.setWeights(await this.getWeights(signal), signal)
  }

  async setWeights(weights: Weights, signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildTraefikV1Ingress(this.release, routingState(this.release, weights)), this.release, signal)
  }

  async getWeights(signal: AbortSignal): Promise<Weights> {
    const live = await this.client.read({apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: this.release.namespace, name: names(this.release).apex}, signal)
    if (live === undefined) return zeroWeights(this.release)
    if (!isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    const n = names(this.release)
    return parseServiceWeights(live.metadata?.annotations?.[SERVICE_WEIGHTS], n.canary, n.stable, this.release.totalWeight)
  }

  async finalize(_outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildTraefikV1Ingress(this.release, routingState(this.release, undefined)), this.release, signal)
  }
}

/**
 * Reads `web-canary: 12.5%` (one `service: weight` per line; `%` optional). An omitted canary gets
 * the remainder of what the listed stable takes. Expressed in `total` units when exact, else in
 * thousandths of a percent.
 */
export function parseServiceWeights(annotation: string | undefined, canaryService: string, stableService: string, total: number): Weights {
  if (annotation === undefined || annotation.trim() === '') return makeWeights(0, total)
  const percents = new Map<string, number>()
  for (const line of annotation.split('\n')) {
    const m = /^\s*([^:\s]+)\s*:\s*([0-9.]+)\s*%?\s*$/.exec(line)
    if (m !== null) percents.set(m[1] ?? '', Number(m[2]))
  }
  const canaryPercent = percents.get(canaryService) ?? (percents.has(stableService) ? 100 - (percents.get(stableService) ?? 0) : 0)
  const thousandths = Math.round(canaryPercent * 1000)
  const inTotal = (thousandths * total) / THOUSANDTHS_OF_PERCENT
  return Number.isInteger(inTotal) ? makeWeights(inTotal, total) : makeWeights(thousandths, THOUSANDTHS_OF_PERCENT)
}
