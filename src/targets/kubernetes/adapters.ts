/**
 * Every port of a release on the Kubernetes target, for the engine: the router of
 * `spec.ingress.router` (an exhaustive map; an unsupported kind is a ConfigError), the Deployment
 * target, the metric source (the in-cluster proxy's /metrics, or Prometheus), and the rollout state
 * in a ConfigMap. Loaded lazily by src/rollout/targets/index.ts, so the local path never imports
 * the Kubernetes client.
 */
import {setTimeout as delay} from 'node:timers/promises'

import {ConfigError} from '../../errors.js'
import type {RolloutState} from '../../rollout/core/types.js'
import {KubeProxyScrapeSource} from './kube-proxy-scrape.js'
import {PrometheusSource} from './prometheus-source.js'
import type {Clock, MetricSource, TrafficRouter} from '../../rollout/ports.js'
import {GatewayApiRouter} from '../../routers/gateway-api/kube-router.js'
import {KubeProxyRouter} from '../../routers/proxy/kube-router.js'
import {NginxIngressRouter} from '../../routers/nginx/kube-router.js'
import {TraefikCrdRouter} from '../../routers/traefik/kube-router.js'
import {TraefikV1Router} from '../../routers/traefik-v1/kube-router.js'
import {rolloutStateSchema} from '../../rollout/state-schema.js'
import {KubernetesRolloutStore} from './kubernetes-store.js'
import {KubernetesTarget} from './kubernetes-target.js'
import type {DownReport, RolloutPorts, TargetInput} from '../../rollout/targets/index.js'
import type {Release, RouterKind} from '../../release/release.js'
import {connectKube, type KubeClient, type KubeConnectionOptions} from '../../kube/client.js'

/** Wall-clock time for the Kubernetes target's waits. */
export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await delay(ms, undefined, {signal})
  },
}

type KubeRouterFactory = (client: KubeClient, release: Release) => TrafficRouter

/** Routers on a cluster, by `spec.ingress.router`. */
export const KUBE_ROUTERS = {
  nginx: (client, release) => new NginxIngressRouter(client, release),
  traefik: (client, release) => new TraefikCrdRouter(client, release),
  'traefik-v1': (client, release) => new TraefikV1Router(client, release),
  'gateway-api': (client, release) => new GatewayApiRouter(client, release),
  proxy: (client, release) => new KubeProxyRouter(client, release),
  'traefik-file': () => {
    throw new ConfigError('router traefik-file: not supported on the Kubernetes target', [{path: 'spec.ingress.router', message: 'traefik-file needs Traefik to read a file; on a cluster use traefik (CRDs) or traefik-v1'}], {
      suggestions: ['Set spec.ingress.router to traefik, traefik-v1, nginx, gateway-api or proxy.'],
    })
  },
} satisfies Record<RouterKind, KubeRouterFactory>

/** Inputs of the Kubernetes ports: the release, plus kubectl's connection flags. */
export interface KubernetesPortsInput extends TargetInput {
  readonly kube?: KubeConnectionOptions
  readonly clock?: Clock
}

/**
 * The namespace a release lives in: `-n` first, then the spec's `metadata.namespace`, then the
 * kubeconfig context's namespace (the spec loader writes `default` for an absent namespace, so
 * `default` defers to the context).
 */
export function releaseNamespace(release: Release, flag: string | undefined, contextNamespace: string): string {
  if (flag !== undefined) return flag
  return release.namespace === 'default' ? contextNamespace : release.namespace
}

/**
 * The metric source of a release: the in-cluster proxy's pods, or Prometheus. A spec that cannot be
 * judged (no Prometheus URL, no queries for a router without built-ins) yields a source whose reads
 * fail with the ConfigError, so `start`/`run` refuse early while `status`, `abort` and `down` work.
 */
function metricSourceFor(client: KubeClient, release: Release): {metrics: MetricSource; problem?: ConfigError} {
  const routerKind = release.ingress?.router ?? 'proxy'
  if (release.analysis.prometheus === undefined) {
    if (routerKind === 'proxy') return {metrics: new KubeProxyScrapeSource(client, release)}
    return failing(new ConfigError(`router ${routerKind}: spec.analysis.prometheus.url is required to judge a canary on Kubernetes`, [{path: 'spec.analysis.prometheus.url', message: 'required for this router', suggestion: 'e.g. http://prometheus-server.monitoring:9090'}]))
  }
  try {
    return {metrics: new PrometheusSource(release)}
  } catch (error) {
    if (error instanceof ConfigError) return failing(error)
    throw error
  }
}

function failing(problem: ConfigError): {metrics: MetricSource; problem: ConfigError} {
  return {metrics: {kind: 'prometheus', read: async () => Promise.reject(problem)}, problem}
}

/** Builds the ports of one release on a cluster; no request is sent before a port is used. */
export async function createKubernetesPorts(input: KubernetesPortsInput): Promise<RolloutPorts> {
  const client = await connectKube({...input.kube, namespace: undefined})
  const namespace = releaseNamespace(input.release, input.kube?.namespace, client.namespace)
  const release: Release = {...input.release, namespace}
  const clock = input.clock ?? SYSTEM_CLOCK
  const routerKind = release.ingress?.router ?? 'proxy'
  const router = KUBE_ROUTERS[routerKind](client, release)
  const target = new KubernetesTarget(client, release, clock)
  const {metrics, problem: metricsProblem} = metricSourceFor(client, release)
  return {
    router,
    target,
    metrics,
    store: new KubernetesRolloutStore<RolloutState>(client, release, rolloutStateSchema),
    prepare: async (_stableImage, signal) => {
      // Refuse a rollout that could never be judged before writing anything; status/abort/down still work.
      if (metricsProblem !== undefined) throw metricsProblem
      await target.checkCanaryOwnership(signal)
      await target.ensureStable(signal)
      await router.reconcile(signal)
    },
    check: async (signal) => {
      await client.read({apiVersion: 'apps/v1', kind: 'Deployment', namespace, name: release.name}, signal)
    },
    endpoints: async () => ({}),
    down: async (signal): Promise<DownReport> => {
      await router.finalize('aborted', signal)
      await target.removeCanary(signal)
      await new KubernetesRolloutStore<RolloutState>(client, release).remove(signal)
      return {stopped: [`canary objects of ${namespace}/${release.name}`, `state ConfigMap ${namespace}/${release.name}-canary-state`]}
    },
  }
}
