/**
 * Every port of a release on the Kubernetes target, for the engine: the TrafficRouter of
 * `spec.ingress.router` (from its definition in src/routers/; a router that cannot run on a cluster
 * throws a ConfigError), the Deployment target, the metric source (Prometheus, or the router's own
 * such as the in-cluster proxy's /metrics), and the rollout state in a ConfigMap. Loaded lazily by src/cli/target-registry.ts, so the local path never imports
 * the Kubernetes client.
 */
import {ConfigError} from '../../errors.js'
import type {RolloutState} from '../../rollout/core/types.js'
import {PrometheusSource} from './prometheus-source.js'
import type {WindowMetrics} from '../../rollout/core/metrics.js'
import type {Clock, DownReport, MetricSource, RolloutPorts, RolloutStore, TargetInput} from '../../rollout/ports.js'
import {routerDefinition, routerOf} from '../../routers/index.js'
import {rolloutStateSchema} from '../../rollout/state-schema.js'
import {KubernetesRolloutStore} from './kubernetes-store.js'
import {KubernetesTarget} from './kubernetes-target.js'
import type {Release} from '../../release/release.js'
import {connectKube, type KubeClient, type KubeConnectionOptions} from '../../kube/client.js'
import {ReadCachingKubeClient} from '../../kube/read-caching-client.js'

/** Inputs of the Kubernetes ports: the generic ones, plus kubectl's connection flags. */
export interface KubernetesPortsInput extends TargetInput {
  readonly kube?: KubeConnectionOptions
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
  if (release.analysis.prometheus === undefined) {
    const ownMetrics = routerDefinition(release).kubeMetrics
    if (ownMetrics !== undefined) return {metrics: ownMetrics(client, release)}
    return failing(new ConfigError(`router ${routerOf(release)}: spec.analysis.prometheus.url is required to judge a canary on Kubernetes`, [{path: 'spec.analysis.prometheus.url', message: 'required for this router', suggestion: 'e.g. http://prometheus-server.monitoring:9090'}]))
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

/**
 * A metric source that answers the same window once per look: `step` judges the window and then
 * shows it in its status, which used to query Prometheus twice. `forget()` (at every new view) ends it.
 */
function readOncePerLook(source: MetricSource): MetricSource & {forget(): void} {
  let last: {sinceMs: number; reading: Promise<WindowMetrics>} | undefined
  return {
    kind: source.kind,
    read: (window, signal) => {
      if (last?.sinceMs !== window.sinceMs) {
        const reading = source.read(window, signal)
        last = {sinceMs: window.sinceMs, reading}
        reading.catch(() => {
          if (last?.reading === reading) last = undefined
        })
      }
      return last.reading
    },
    forget: () => {
      last = undefined
    },
  }
}

/** Builds the ports of one release on a cluster; no request is sent before a port is used. */
export async function createKubernetesPorts(input: KubernetesPortsInput): Promise<RolloutPorts> {
  const client = new ReadCachingKubeClient(await connectKube({...input.kube, namespace: undefined}))
  const namespace = releaseNamespace(input.release, input.kube?.namespace, client.namespace)
  const release: Release = {...input.release, namespace}
  const {metrics: source, problem: metricsProblem} = metricSourceFor(client, release)
  const metrics = readOncePerLook(source)
  const newView = () => {
    client.forget()
    metrics.forget()
  }
  // The target's polls (promote waits for the rollout) read afresh after every wait.
  const wallClock = input.clock
  const clock: Clock = {
    now: () => wallClock.now(),
    sleep: async (ms, signal) => {
      await wallClock.sleep(ms, signal)
      newView()
    },
  }
  const router = routerDefinition(release).kubeRouter(client, release)
  const target = new KubernetesTarget(client, release, clock)
  const stateStore = new KubernetesRolloutStore<RolloutState>(client, release, rolloutStateSchema)
  // Every command and every engine tick begins by loading the state: that begins a new view of the cluster
  // (src/kube/read-caching-client.ts).
  const store: RolloutStore<RolloutState> = {
    load: (signal) => {
      newView()
      return stateStore.load(signal)
    },
    save: (value, expectedVersion, signal) => stateStore.save(value, expectedVersion, signal),
    stage: (value, expectedVersion, signal) => stateStore.stage(value, expectedVersion, signal),
    remove: (signal) => stateStore.remove(signal),
  }
  return {
    router,
    target,
    metrics,
    store,
    prepare: async (_stableImage, signal) => {
      // Refuse a rollout that could never be judged before writing anything; status/abort/down still work.
      if (metricsProblem !== undefined) throw metricsProblem
      // Preparing looks at the world afresh too (it may follow a failed attempt in the same process).
      newView()
      await target.checkCanaryOwnership(signal)
      await target.ensureStable(signal)
      await router.reconcile(signal)
    },
    // Reachability: the state ConfigMap answers (every command reads it anyway, so this sends nothing more).
    check: async (signal) => {
      await client.read(stateStore.stateRef, signal)
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
