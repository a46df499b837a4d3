/**
 * canary's bundled proxy running in the cluster: a Deployment and Service in front of the stable
 * and canary Services, its routing in a ConfigMap (`<release>-proxy-config`, key `proxy.yaml`).
 * Weights change only the ConfigMap; the proxy follows it through the API (a watch, see
 * src/kube/proxy-config-sync.ts), so a change applies within a second and never restarts pods.
 * The Deployment is rendered from a weight-independent state, so its config checksum (which rolls
 * the pods) moves only when something other than the weights changes.
 */
import {parse as parseYaml} from 'yaml'

import {notOwnedError} from '../../kube/apply.js'
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary, type KubeObject} from '../../kube/objects.js'
import {applyAllOwned, routingState, zeroWeights} from '../../kube/routing.js'
import {names} from '../../render/names.js'
import {buildProxy, PROXY_CONFIG_FILE} from '../../render/proxy.js'
import type {Release} from '../../spec/release.js'
import {weights as makeWeights, type Weights} from '../core/weights.js'
import type {RouterCapabilities, TrafficRouter} from '../ports.js'

interface ProxyVersion {
  name?: string
  weight?: number
}

/** Splits traffic with the bundled proxy deployed in the cluster. */
export class KubeProxyRouter implements TrafficRouter {
  readonly kind = 'proxy'
  readonly capabilities: RouterCapabilities = {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: true}

  constructor(private readonly client: KubeClient, private readonly release: Release) {}

  /** The routing ConfigMap for `weights` (stable only when undefined). */
  private configMap(weights: Weights | undefined): KubeObject {
    const objects = buildProxy(this.release, routingState(this.release, weights)) as unknown as KubeObject[]
    return objects.find((o) => o.kind === 'ConfigMap') as KubeObject
  }

  async reconcile(signal: AbortSignal): Promise<void> {
    const current = await this.getWeights(signal)
    const workload = (buildProxy(this.release, routingState(this.release, zeroWeights(this.release))) as unknown as KubeObject[]).filter((o) => o.kind !== 'ConfigMap')
    await applyAllOwned(this.client, [this.configMap(current), ...workload], this.release, signal)
  }

  async setWeights(weights: Weights, signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, [this.configMap(weights)], this.release, signal)
  }

  async getWeights(signal: AbortSignal): Promise<Weights> {
    const live = await this.client.read({apiVersion: 'v1', kind: 'ConfigMap', namespace: this.release.namespace, name: names(this.release).proxyConfig}, signal)
    if (live === undefined) return zeroWeights(this.release)
    if (!isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    return parseProxyWeights((live.data as Record<string, string> | undefined)?.[PROXY_CONFIG_FILE], this.release.name, this.release.totalWeight)
  }

  async finalize(_outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void> {
    await applyAllOwned(this.client, [this.configMap(undefined)], this.release, signal)
  }
}

/** Canary weight out of the sum of the service's version weights in a proxy config. */
export function parseProxyWeights(configText: string | undefined, service: string, fallbackTotal: number): Weights {
  if (configText === undefined) return makeWeights(0, fallbackTotal)
  const config = parseYaml(configText) as {services?: Record<string, {versions?: ProxyVersion[]}>} | null
  const versions = config?.services?.[service]?.versions ?? []
  const total = versions.reduce((sum, v) => sum + (v.weight ?? 0), 0)
  const canary = versions.find((v) => v.name === 'canary')
  if (canary === undefined || total === 0) return makeWeights(0, total === 0 ? fallbackTotal : total)
  return makeWeights(canary.weight ?? 0, total)
}
