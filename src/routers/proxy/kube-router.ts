/**
 * canary's bundled proxy running in the cluster: a Deployment and Service in front of the stable
 * and canary Services, its routing in a ConfigMap (`<release>-proxy-config`, key `proxy.yaml`).
 * Weights change only the ConfigMap; the proxy follows it through the API (a watch, see
 * config-sync.ts), so a change applies within a second and never restarts pods.
 * The Deployment is rendered from a weight-independent state, so its config checksum (which rolls
 * the pods) moves only when something other than the weights changes.
 *
 * The pods run as ServiceAccount `<release>-proxy`, which an administrator applies once with
 * `canary render --rbac` (canary's own account may not create RBAC objects); without it the
 * ReplicaSet can create no pod, so `reconcile` refuses to go on when it is missing.
 *
 * The pods read their admin token from Secret `<release>-proxy-admin`. Render output never holds
 * it (it must stay deterministic and free of secrets), so `reconcile` creates it with a random
 * token before the Deployment that references it, and otherwise leaves it as it is: a token
 * someone set (or rotated) is theirs to keep.
 */
import {randomBytes} from 'node:crypto'

import {parse as parseYaml} from 'yaml'

import {ConfigError, ConflictError} from '../../errors.js'
import {notOwnedError, withOwnership} from '../../kube/apply.js'
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary, type KubeObject, type ObjectRef} from '../../kube/objects.js'
import {applyAllOwned, routingState, zeroWeights} from '../kube-routing.js'
import {names} from '../../render/names.js'
import {buildProxy, buildProxyAdminSecret, PROXY_ADMIN_SECRET_KEY, PROXY_CONFIG_FILE} from './objects.js'
import type {Release} from '../../release/release.js'
import {weights as makeWeights, type Weights} from '../../rollout/core/weights.js'
import type {TrafficRouter} from '../../rollout/ports.js'

interface ProxyVersion {
  name?: string
  weight?: number
}

/** Splits traffic with the bundled proxy deployed in the cluster. */
export class KubeProxyRouter implements TrafficRouter {
  readonly kind = 'proxy'

  constructor(private readonly client: KubeClient, private readonly release: Release) {}

  /** The routing ConfigMap for `weights` (stable only when undefined). */
  private configMap(weights: Weights | undefined): KubeObject {
    const objects = buildProxy(this.release, routingState(this.release, weights))
    return objects.find((o) => o.kind === 'ConfigMap') as KubeObject
  }

  async reconcile(signal: AbortSignal): Promise<void> {
    const current = await this.getWeights(signal)
    const workload = (buildProxy(this.release, routingState(this.release, zeroWeights(this.release)))).filter((o) => o.kind !== 'ConfigMap')
    await this.checkServiceAccount(signal)
    await this.ensureAdminSecret(signal)
    await applyAllOwned(this.client, [this.configMap(current), ...workload], this.release, signal)
  }

  /** Refuses (exit 3) when the proxy pods' ServiceAccount does not exist: their pods could never be created. */
  async checkServiceAccount(signal: AbortSignal): Promise<void> {
    const ref: ObjectRef = {apiVersion: 'v1', kind: 'ServiceAccount', namespace: this.release.namespace, name: names(this.release).proxy}
    if ((await this.client.read(ref, signal)) !== undefined) return
    throw new ConfigError(`ServiceAccount ${ref.namespace}/${ref.name}: cannot deploy the proxy: it does not exist, and the proxy pods run as it (it lets them watch their routing ConfigMap)`, [], {
      subject: `ServiceAccount ${ref.namespace}/${ref.name}`,
      suggestions: [`Apply canary's RBAC once, as an administrator: canary render --rbac -f <spec> | kubectl apply -f -`],
    })
  }

  /** Creates the admin token Secret (random, owned by canary) when absent; checks an existing one has the key. */
  async ensureAdminSecret(signal: AbortSignal): Promise<void> {
    const ref: ObjectRef = {apiVersion: 'v1', kind: 'Secret', namespace: this.release.namespace, name: names(this.release).proxyAdminSecret}
    const live = await this.client.read(ref, signal)
    if (live === undefined) {
      // 32 random bytes, hex: no character the proxy's ${VAR} expansion or a shell would treat specially.
      const secret = withOwnership(buildProxyAdminSecret(this.release, randomBytes(32).toString('hex')), this.release.name)
      try {
        await this.client.create(secret, signal)
      } catch (error) {
        // Another canary run created it between our read and our create: theirs is as good as ours.
        if (!(error instanceof ConflictError)) throw error
      }
      return
    }
    const token = (live.data as Record<string, string> | undefined)?.[PROXY_ADMIN_SECRET_KEY]
    if (token === undefined || token === '') {
      throw new ConfigError(`Secret ${ref.namespace}/${ref.name}: cannot use it as the proxy's admin token: it has no key "${PROXY_ADMIN_SECRET_KEY}"`, [], {
        subject: `Secret ${ref.namespace}/${ref.name}`,
        suggestions: [
          `Delete it and let canary create one: kubectl -n ${ref.namespace} delete secret ${ref.name}`,
          `or add the key: kubectl -n ${ref.namespace} create secret generic ${ref.name} --from-literal=${PROXY_ADMIN_SECRET_KEY}="$(openssl rand -hex 32)" --dry-run=client -o yaml | kubectl apply -f -`,
        ],
      })
    }
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
