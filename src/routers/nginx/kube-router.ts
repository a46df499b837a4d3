/**
 * ingress-nginx: the main Ingress routes the apex host/path to the stable Service; a second
 * Ingress for the same host/path, annotated `nginx.ingress.kubernetes.io/canary: "true"`, takes
 * `canary-weight` out of `canary-weight-total` (default 100) and the header/cookie overrides
 * (kubernetes/ingress-nginx docs/user-guide/nginx-configuration/annotations.md#canary; precedence
 * header → cookie → weight). Finalizing deletes the canary Ingress, so all traffic follows the main one.
 */
import {deleteOwned} from '../../kube/apply.js'
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary, type KubeObject} from '../../kube/objects.js'
import {applyAllOwned, routingState, zeroWeights} from '../kube-routing.js'
import {notOwnedError} from '../../kube/apply.js'
import {names} from '../../render/names.js'
import {buildNginxIngress} from './objects.js'
import type {Release} from '../../release/release.js'
import {DEFAULT_TOTAL_WEIGHT, weights as makeWeights, type Weights} from '../../rollout/core/weights.js'
import type {TrafficRouter} from '../../rollout/ports.js'

const CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight'
const CANARY_WEIGHT_TOTAL = 'nginx.ingress.kubernetes.io/canary-weight-total'

/** Splits traffic with ingress-nginx canary annotations. */
export class NginxIngressRouter implements TrafficRouter {
  readonly kind = 'nginx'

  constructor(private readonly client: KubeClient, private readonly release: Release) {}

  private canaryRef() {
    return {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: this.release.namespace, name: names(this.release).canaryIngress}
  }

  async reconcile(signal: AbortSignal): Promise<void> {
    const current = (await this.readCanaryIngress(signal)) === undefined ? zeroWeights(this.release) : await this.getWeights(signal)
    await applyAllOwned(this.client, buildNginxIngress(this.release, routingState(this.release, current)), this.release, signal)
  }

  async setWeights(weights: Weights, signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, buildNginxIngress(this.release, routingState(this.release, weights)), this.release, signal)
  }

  async getWeights(signal: AbortSignal): Promise<Weights> {
    const live = await this.readCanaryIngress(signal)
    if (live === undefined) return zeroWeights(this.release)
    return parseNginxWeights(live.metadata?.annotations ?? {})
  }

  async finalize(_outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void> {
    await deleteOwned(this.client, this.canaryRef(), this.release.name, signal)
  }

  private async readCanaryIngress(signal: AbortSignal): Promise<KubeObject | undefined> {
    const live = await this.client.read(this.canaryRef(), signal)
    if (live !== undefined && !isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    return live
  }
}

/**
 * The split an ingress-nginx canary Ingress expresses. The controller uses canary-weight-total only
 * above 100 (rootfs/etc/nginx/lua/balancer.lua), so a smaller or missing total means 100.
 */
export function parseNginxWeights(annotations: Readonly<Record<string, string>>): Weights {
  const declaredTotal = Number(annotations[CANARY_WEIGHT_TOTAL] ?? DEFAULT_TOTAL_WEIGHT)
  const total = Number.isInteger(declaredTotal) && declaredTotal > DEFAULT_TOTAL_WEIGHT ? declaredTotal : DEFAULT_TOTAL_WEIGHT
  const weight = Number(annotations[CANARY_WEIGHT] ?? 0)
  return makeWeights(Number.isFinite(weight) ? Math.min(Math.max(weight, 0), total) : 0, total)
}
