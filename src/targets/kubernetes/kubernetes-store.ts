/**
 * Rollout state in the cluster: one ConfigMap per release (`<release>-canary-state`), its
 * resourceVersion the optimistic-concurrency token. Two CI jobs racing on one release: the first
 * write wins, the second gets 409 from the API server and exits 5. Never a lost update.
 */
import {notOwnedError, withOwnership} from '../../kube/apply.js'
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary, type KubeObject, type ObjectRef} from '../../kube/objects.js'
import type * as z from 'zod/mini'

import {ConfigError, ConflictError} from '../../errors.js'
import {schemaProblems} from '../../rollout/schema-problems.js'
import type {ReleaseRef, RolloutStore, StagedSave, Versioned} from '../../rollout/ports.js'

/** The key in the ConfigMap's `data` holding the JSON state. */
export const STATE_KEY = 'state.json'

/** Name of the state ConfigMap of a release. */
export function stateConfigMapName(release: string): string {
  return `${release}-canary-state`
}

/** RolloutStore backed by a ConfigMap and guarded by resourceVersion. */
export class KubernetesRolloutStore<T> implements RolloutStore<T> {
  private readonly ref: ObjectRef

  /** `schema` validates the stored value on load (the rollout's state schema); without one it is trusted. */
  constructor(private readonly client: KubeClient, private readonly release: ReleaseRef, private readonly schema?: z.ZodMiniType<T>) {
    this.ref = {apiVersion: 'v1', kind: 'ConfigMap', namespace: release.namespace, name: stateConfigMapName(release.name)}
  }

  /** The state ConfigMap. */
  get stateRef(): ObjectRef {
    return this.ref
  }

  async load(signal: AbortSignal): Promise<Versioned<T> | undefined> {
    const live = await this.client.read(this.ref, signal)
    if (live === undefined) return undefined
    if (!isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    return {value: this.decode(live), version: live.metadata?.resourceVersion ?? ''}
  }

  async save(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<Versioned<T>> {
    const body: KubeObject = withOwnership({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: this.ref.name, namespace: this.ref.namespace}, data: {[STATE_KEY]: JSON.stringify(value)}}, this.release.name)
    try {
      const saved = expectedVersion === undefined
        ? await this.client.create(body, signal)
        : await this.client.replace({...body, metadata: {...body.metadata, resourceVersion: expectedVersion}}, signal)
      return {value, version: saved.metadata?.resourceVersion ?? ''}
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new ConflictError(`release ${this.release.namespace}/${this.release.name}: another canary run changed the rollout state first (ConfigMap ${this.ref.namespace}/${this.ref.name}); this run's update was not applied`, {
          cause: error, subject: `ConfigMap ${this.ref.namespace}/${this.ref.name}`,
          suggestions: ['Only one pipeline should drive a release at a time; run `canary status` to see where it is, then retry.'],
        })
      }
      throw error
    }
  }

  /**
   * The API server writes atomically under resourceVersion, so the commit's precondition is the
   * guard. Staging checks the version as this command last read it (through the ports' read cache,
   * usually without a request): a race lost after that is refused at the commit, and the engine
   * then puts the winner's weights back.
   */
  async stage(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<StagedSave<T>> {
    const live = await this.load(signal)
    if (live?.version !== expectedVersion) {
      throw new ConflictError(`release ${this.release.namespace}/${this.release.name}: another canary run changed the rollout state first (ConfigMap ${this.ref.namespace}/${this.ref.name})`, {
        subject: `ConfigMap ${this.ref.namespace}/${this.ref.name}`,
        suggestions: ['Only one pipeline should drive a release at a time; run `canary status` to see where it is, then retry.'],
      })
    }
    return {commit: (commitSignal) => this.save(value, expectedVersion, commitSignal), discard: async () => undefined}
  }

  async remove(signal: AbortSignal): Promise<void> {
    const live = await this.client.read(this.ref, signal)
    if (live === undefined) return
    if (!isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'delete')
    await this.client.delete(this.ref, signal)
  }

  /** The stored state, validated whole: a corrupt one is refused by field (exit 3), never used or overwritten. */
  private decode(live: KubeObject): T {
    const subject = `ConfigMap ${this.ref.namespace}/${this.ref.name}`
    const refuse = (why: string, problems: {path: string; message: string}[] = []) => new ConfigError(`${subject}: rollout state ${why}`, problems, {
      subject,
      suggestions: ['canary will not use or overwrite it. Restore it from your cluster backup, or delete the ConfigMap to forget the rollout (the router objects stay).'],
    })
    const text = (live.data as Record<string, string> | undefined)?.[STATE_KEY]
    if (text === undefined) throw refuse(`is missing (no key ${STATE_KEY})`)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (error) {
      throw refuse(`is not valid JSON (${(error as Error).message})`)
    }
    if (this.schema === undefined) return parsed as T
    const result = this.schema.safeParse(parsed)
    if (result.success) return result.data
    const problems = schemaProblems(result.error.issues, parsed).map((p) => ({...p, path: p.path === '' ? `data.${STATE_KEY}` : `data.${STATE_KEY}.${p.path}`}))
    const first = problems[0]
    throw refuse(`is corrupt: ${problems.length === 1 && first !== undefined ? `field ${first.path}: ${first.message}` : `${problems.length} problems (fields ${problems.map((p) => p.path).join(', ')})`}`, problems)
  }
}
