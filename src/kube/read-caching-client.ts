/**
 * One command's view of the cluster, read once. A `canary step` used to GET the state ConfigMap
 * three times and the weighted TraefikService three times (load, stage, status; read back, apply,
 * status). This client remembers every object it read or wrote (a write's answer is the object as
 * the server now has it) and serves later reads of it from memory, until `forget()`.
 *
 * The Kubernetes ports (kube-ports.ts) begin a new view, `forget()`, whenever the rollout state is
 * loaded (every command and every engine tick start there), when `start` prepares, and after every
 * wait of the target, so polls and `run`'s ticks read afresh while the reads within one look at the
 * world are consistent. Nothing here weakens concurrency control: every write of the state is still
 * guarded by resourceVersion on the server, and a failed write forgets that object, so the next read
 * sees the winner's version.
 */
import type {KubeClient, WatchEvent} from './client.js'
import type {KubeObject, ObjectRef} from './objects.js'

function keyOf(ref: ObjectRef): string {
  return `${ref.apiVersion}\u0000${ref.kind}\u0000${ref.namespace}\u0000${ref.name}`
}

/** A KubeClient whose reads of one object are answered once (see the file comment). */
export class ReadCachingKubeClient implements KubeClient {
  private readonly known = new Map<string, KubeObject | undefined>()

  constructor(private readonly inner: KubeClient) {}

  get namespace(): string {
    return this.inner.namespace
  }

  get server(): string {
    return this.inner.server
  }

  /** Drops everything remembered: the next read of each object goes to the server. */
  forget(): void {
    this.known.clear()
  }

  async read(ref: ObjectRef, signal: AbortSignal): Promise<KubeObject | undefined> {
    const key = keyOf(ref)
    if (this.known.has(key)) return copy(this.known.get(key))
    const object = await this.inner.read(ref, signal)
    this.known.set(key, object)
    return copy(object)
  }

  list(apiVersion: string, kind: string, namespace: string, labelSelector: string | undefined, signal: AbortSignal): Promise<KubeObject[]> {
    return this.inner.list(apiVersion, kind, namespace, labelSelector, signal)
  }

  create(object: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    return this.remember(this.refOf(object), () => this.inner.create(object, signal))
  }

  replace(object: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    return this.remember(this.refOf(object), () => this.inner.replace(object, signal))
  }

  apply(object: KubeObject, options: {readonly force: boolean}, signal: AbortSignal): Promise<KubeObject> {
    return this.remember(this.refOf(object), () => this.inner.apply(object, options, signal))
  }

  mergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject> {
    return this.remember(ref, () => this.inner.mergePatch(ref, patch, signal))
  }

  strategicMergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject> {
    return this.remember(ref, () => this.inner.strategicMergePatch(ref, patch, signal))
  }

  delete(ref: ObjectRef, signal: AbortSignal): Promise<boolean> {
    // Deleting may only start (finalizers, graceful deletion): the next read asks the server.
    this.known.delete(keyOf(ref))
    return this.inner.delete(ref, signal)
  }

  watch(ref: ObjectRef, resourceVersion: string | undefined, onEvent: (event: WatchEvent) => void, onEnd: (error: unknown) => void, signal: AbortSignal): Promise<void> {
    return this.inner.watch(ref, resourceVersion, onEvent, onEnd, signal)
  }

  podProxyGet(namespace: string, pod: string, port: number, path: string, signal: AbortSignal): Promise<string> {
    return this.inner.podProxyGet(namespace, pod, port, path, signal)
  }

  /** Runs a write; its answer is the object now. A failed write forgets the object (a conflict means ours is stale). */
  private async remember(ref: ObjectRef, write: () => Promise<KubeObject>): Promise<KubeObject> {
    const key = keyOf(ref)
    try {
      const written = await write()
      this.known.set(key, written)
      return copy(written) as KubeObject
    } catch (error) {
      this.known.delete(key)
      throw error
    }
  }

  private refOf(object: KubeObject): ObjectRef {
    return {apiVersion: object.apiVersion ?? 'v1', kind: object.kind ?? '', namespace: object.metadata?.namespace ?? this.inner.namespace, name: object.metadata?.name ?? ''}
  }
}

/** Callers may change what they get; the remembered object must not change with it. */
function copy(object: KubeObject | undefined): KubeObject | undefined {
  return object === undefined ? undefined : structuredClone(object)
}
