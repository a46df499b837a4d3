/**
 * The one door to the Kubernetes API. @kubernetes/client-node costs ~600 ms to import, so it is
 * loaded here, lazily, only when a command actually talks to a cluster; every
 * other module imports types only. Kubeconfig resolution follows kubectl: `--kubeconfig`, then
 * `KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account; `--context` picks the
 * context and `-n/--namespace` overrides the context's namespace.
 */
import type * as K8s from '@kubernetes/client-node'

import {ConfigError} from '../errors.js'
import {mapKubeError} from './errors.js'
import {FIELD_MANAGER, resourceOf, subjectOf, type KubeObject, type ObjectRef} from './objects.js'

type ClientModule = typeof K8s

let clientModule: Promise<ClientModule> | undefined

/** Imports @kubernetes/client-node once, on first use. */
export function loadClientModule(): Promise<ClientModule> {
  clientModule ??= import('@kubernetes/client-node')
  return clientModule
}

/** kubectl's connection flags. */
export interface KubeConnectionOptions {
  /** Path of a kubeconfig file (`--kubeconfig`); otherwise KUBECONFIG, ~/.kube/config, in-cluster. */
  readonly kubeconfig?: string
  /** Context name (`--context`); the kubeconfig's current context otherwise. */
  readonly context?: string
  /** Namespace (`-n`); the context's namespace, then `default`, otherwise. */
  readonly namespace?: string
}

/** One watch event, as the API streams it. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  readonly object: KubeObject
}

/** The API calls canary makes. Every method maps failures to CanaryErrors naming object and verb. */
export interface KubeClient {
  /** Namespace from `-n`, the context, or `default`. */
  readonly namespace: string
  /** The API server URL, for messages. */
  readonly server: string
  /** The object, or undefined when it does not exist. */
  read(ref: ObjectRef, signal: AbortSignal): Promise<KubeObject | undefined>
  list(apiVersion: string, kind: string, namespace: string, labelSelector: string | undefined, signal: AbortSignal): Promise<KubeObject[]>
  create(object: KubeObject, signal: AbortSignal): Promise<KubeObject>
  /** PUT, guarded by `metadata.resourceVersion` when the object carries one (409 → ConflictError). */
  replace(object: KubeObject, signal: AbortSignal): Promise<KubeObject>
  /** Server-side apply with field manager `canary`; `force` takes over fields other managers set. */
  apply(object: KubeObject, options: {readonly force: boolean}, signal: AbortSignal): Promise<KubeObject>
  /** JSON merge patch (RFC 7386): works on every kind, custom resources included. */
  mergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject>
  /** Strategic merge patch: built-in kinds only; containers merge by name. */
  strategicMergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject>
  /** True when it was deleted, false when it was already gone. */
  delete(ref: ObjectRef, signal: AbortSignal): Promise<boolean>
  /** Streams events for one object (from `resourceVersion`) until the signal aborts; `onEnd` runs when the stream ends otherwise. */
  watch(ref: ObjectRef, resourceVersion: string | undefined, onEvent: (event: WatchEvent) => void, onEnd: (error: unknown) => void, signal: AbortSignal): Promise<void>
  /** GET through the API server's pod proxy: `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`. */
  podProxyGet(namespace: string, pod: string, port: number, path: string, signal: AbortSignal): Promise<string>
}

/** Loads the kubeconfig (kubectl conventions) and returns a client; nothing is sent yet. */
export async function connectKube(options: KubeConnectionOptions = {}): Promise<KubeClient> {
  const k8s = await loadClientModule()
  const kc = new k8s.KubeConfig()
  try {
    if (options.kubeconfig !== undefined) kc.loadFromFile(options.kubeconfig)
    else kc.loadFromDefault()
  } catch (error) {
    throw new ConfigError(`cannot load kubeconfig${options.kubeconfig === undefined ? '' : ` ${options.kubeconfig}`}: ${(error as Error).message}`, [], {
      cause: error, subject: options.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config',
      suggestions: ['Pass --kubeconfig PATH, set KUBECONFIG, or run inside a pod with a service account.'],
    })
  }
  if (options.context !== undefined) {
    const names = kc.getContexts().map((c) => c.name)
    if (!names.includes(options.context)) {
      throw new ConfigError(`kubeconfig has no context "${options.context}"`, [], {
        subject: options.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config',
        suggestions: [names.length === 0 ? 'The kubeconfig defines no contexts.' : `Known contexts: ${names.join(', ')}.`],
      })
    }
    kc.setCurrentContext(options.context)
  }
  const cluster = kc.getCurrentCluster()
  // client-node's last resort, when no kubeconfig and no service account exist, is an unauthenticated
  // http://localhost:8080 (old kubectl's default); every call would then fail obscurely, so say so now.
  if (options.kubeconfig === undefined && kc.getCurrentContext() === 'loaded-context' && cluster?.name === 'cluster' && cluster.server === 'http://localhost:8080') {
    throw new ConfigError('no kubeconfig found: KUBECONFIG is unset or empty, ~/.kube/config does not exist, and this is not a pod with a service account', [], {
      subject: 'kubeconfig',
      suggestions: ['Pass --kubeconfig PATH or set KUBECONFIG.', 'For a rollout on this machine without a cluster, add a spec.local section (docs/rollout.md).'],
    })
  }
  if (cluster === null) {
    throw new ConfigError('no Kubernetes cluster configured: the kubeconfig has no current context', [], {
      suggestions: ['Pass --kubeconfig PATH and --context NAME, set KUBECONFIG, or run `kubectl config use-context NAME`.'],
    })
  }
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace
  const namespace = options.namespace ?? (contextNamespace === undefined || contextNamespace === '' ? 'default' : contextNamespace)
  return new ClientNodeKubeClient(k8s, kc, namespace, cluster.server)
}

/** Resolves when the promise does, rejects with an AbortError as soon as the signal aborts. */
function abortable<T>(start: () => Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  const promise = start()
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/** client-node returns model classes with Dates; canary works on plain JSON. */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T
}

class ClientNodeKubeClient implements KubeClient {
  private readonly objects: K8s.KubernetesObjectApi
  private readonly core: K8s.CoreV1Api

  constructor(
    private readonly k8s: ClientModule,
    private readonly kc: K8s.KubeConfig,
    readonly namespace: string,
    readonly server: string,
  ) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc)
    this.core = kc.makeApiClient(k8s.CoreV1Api)
  }

  private async call<T>(verb: string, ref: ObjectRef | {apiVersion: string; kind: string; namespace: string; name?: string}, signal: AbortSignal, run: () => Promise<T>, resource = resourceOf(ref.apiVersion, ref.kind)): Promise<T> {
    try {
      return plain(await abortable(run, signal))
    } catch (error) {
      if (signal.aborted && error === signal.reason) throw error
      const subject = ref.name === undefined ? `${ref.kind}s in ${ref.namespace}` : subjectOf(ref as ObjectRef)
      throw mapKubeError(error, {verb, subject, resource}, this.server)
    }
  }

  private header(ref: ObjectRef): K8s.KubernetesObject {
    return {apiVersion: ref.apiVersion, kind: ref.kind, metadata: {name: ref.name, namespace: ref.namespace}}
  }

  async read(ref: ObjectRef, signal: AbortSignal): Promise<KubeObject | undefined> {
    try {
      return await this.call('get', ref, signal, () => this.objects.read(this.header(ref) as never) as Promise<KubeObject>)
    } catch (error) {
      if ((error as {exitCode?: number}).exitCode === 4) return undefined
      throw error
    }
  }

  async list(apiVersion: string, kind: string, namespace: string, labelSelector: string | undefined, signal: AbortSignal): Promise<KubeObject[]> {
    const list = await this.call('list', {apiVersion, kind, namespace}, signal, () => this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector))
    // List items carry no apiVersion/kind; put them back so objects are self-describing.
    return (list.items as KubeObject[]).map((item) => ({...item, apiVersion, kind}))
  }

  create(object: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    return this.call('create', this.refOf(object), signal, () => this.objects.create(object as K8s.KubernetesObject, undefined, undefined, FIELD_MANAGER) as Promise<KubeObject>)
  }

  replace(object: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    return this.call('update', this.refOf(object), signal, () => this.objects.replace(object as K8s.KubernetesObject, undefined, undefined, FIELD_MANAGER) as Promise<KubeObject>)
  }

  apply(object: KubeObject, options: {readonly force: boolean}, signal: AbortSignal): Promise<KubeObject> {
    return this.call('patch', this.refOf(object), signal, () => this.objects.patch(object as K8s.KubernetesObject, undefined, undefined, FIELD_MANAGER, options.force, this.k8s.PatchStrategy.ServerSideApply) as Promise<KubeObject>)
  }

  mergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject> {
    const body = {...patch, apiVersion: ref.apiVersion, kind: ref.kind, metadata: {...(patch.metadata as object | undefined), name: ref.name, namespace: ref.namespace}}
    return this.call('patch', ref, signal, () => this.objects.patch(body as K8s.KubernetesObject, undefined, undefined, FIELD_MANAGER, undefined, this.k8s.PatchStrategy.MergePatch) as Promise<KubeObject>)
  }

  strategicMergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject> {
    const body = {...patch, apiVersion: ref.apiVersion, kind: ref.kind, metadata: {...(patch.metadata as object | undefined), name: ref.name, namespace: ref.namespace}}
    return this.call('patch', ref, signal, () => this.objects.patch(body as K8s.KubernetesObject, undefined, undefined, FIELD_MANAGER, undefined, this.k8s.PatchStrategy.StrategicMergePatch) as Promise<KubeObject>)
  }

  async delete(ref: ObjectRef, signal: AbortSignal): Promise<boolean> {
    try {
      await this.call('delete', ref, signal, () => this.objects.delete(this.header(ref)))
      return true
    } catch (error) {
      if ((error as {exitCode?: number}).exitCode === 4) return false
      throw error
    }
  }

  async watch(ref: ObjectRef, resourceVersion: string | undefined, onEvent: (event: WatchEvent) => void, onEnd: (error: unknown) => void, signal: AbortSignal): Promise<void> {
    const resource = resourceOf(ref.apiVersion, ref.kind).split('.')[0] ?? ''
    const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`
    const path = `${base}/namespaces/${encodeURIComponent(ref.namespace)}/${resource}`
    const query: Record<string, string> = {fieldSelector: `metadata.name=${ref.name}`}
    if (resourceVersion !== undefined) query.resourceVersion = resourceVersion
    const operation = {verb: 'watch', subject: subjectOf(ref), resource: resourceOf(ref.apiVersion, ref.kind)}
    let controller: AbortController
    try {
      controller = await abortable(() => new this.k8s.Watch(this.kc).watch(path, query,
        (type: string, object: unknown) => onEvent({type: type as WatchEvent['type'], object: plain(object) as KubeObject}),
        (error: unknown) => {
          if (!signal.aborted) onEnd(error === null || error === undefined ? undefined : mapKubeError(error, operation, this.server))
        }), signal)
    } catch (error) {
      if (signal.aborted && error === signal.reason) throw error
      throw mapKubeError(error, operation, this.server)
    }
    signal.addEventListener('abort', () => controller.abort(), {once: true})
  }

  podProxyGet(namespace: string, pod: string, port: number, path: string, signal: AbortSignal): Promise<string> {
    const ref = {apiVersion: 'v1', kind: 'Pod', namespace, name: `${pod}:${port}`}
    return this.call('get', ref, signal, () => this.core.connectGetNamespacedPodProxyWithPath({name: `${pod}:${port}`, namespace, path: path.replace(/^\//, '')}), 'pods/proxy')
  }

  private refOf(object: KubeObject): ObjectRef {
    return {apiVersion: object.apiVersion ?? 'v1', kind: object.kind ?? '', namespace: object.metadata?.namespace ?? this.namespace, name: object.metadata?.name ?? ''}
  }
}
