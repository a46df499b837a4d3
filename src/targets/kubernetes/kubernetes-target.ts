/**
 * The Kubernetes target: the stable and canary Deployments and Services of a release.
 *
 * - Stable objects are created from the spec when absent and otherwise adopted as they are: canary
 *   never re-applies the stable Deployment (that would undo the last promotion); it changes only
 *   the stable image, at promote.
 * - The canary Deployment and Service are canary's own (server-side apply, managed-by label); an
 *   object of that name that is not canary's is refused (exit 5).
 * - Readiness follows `kubectl rollout status` (observedGeneration, updated, available replicas)
 *   and reports a Progressing=False/ProgressDeadlineExceeded condition as a failure.
 */
import {applyOwned, deleteOwned, notOwnedError, withOwnership} from '../../kube/apply.js'
import type {KubeClient} from '../../kube/client.js'
import {isManagedByCanary, type KubeObject, type ObjectRef} from '../../kube/objects.js'
import {buildDeployment, buildService, trackName} from '../../render/workloads.js'
import type {Release} from '../../release/release.js'
import {NotFoundError, TimeoutError} from '../../errors.js'
import type {Clock, Readiness, Target, Track} from '../../rollout/ports.js'

/** The container whose image is the release's: `app` in canary's own Deployments, else the first. */
export const APP_CONTAINER = 'app'

/** Options of the Kubernetes target. */
export interface KubernetesTargetOptions {
  /** How often `promote` re-reads the stable Deployment while it rolls out. */
  readonly pollIntervalMs?: number
  /** Progress output while waiting (`stable 2/3 ready`). */
  readonly onProgress?: (track: Track, readiness: Readiness) => void
}

interface DeploymentStatus {
  observedGeneration?: number
  replicas?: number
  updatedReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  conditions?: Array<{type?: string; status?: string; reason?: string; message?: string}>
}

/** Readiness of a Deployment, with the rules of `kubectl rollout status` (kubectl/pkg/polymorphichelpers/rollout_status.go). */
export function deploymentReadiness(deployment: KubeObject | undefined, subject: string): Readiness {
  if (deployment === undefined) return {ready: false, readyReplicas: 0, replicas: 0, reason: `${subject} does not exist`}
  const spec = (deployment.spec ?? {}) as {replicas?: number}
  const status = (deployment.status ?? {}) as DeploymentStatus
  const replicas = spec.replicas ?? 1
  const ready = status.availableReplicas ?? 0
  const base = {readyReplicas: Math.min(ready, replicas), replicas}
  const generation = deployment.metadata?.generation ?? 0
  if ((status.observedGeneration ?? 0) < generation) return {...base, ready: false, reason: `waiting for the Deployment controller to observe generation ${generation}`}
  const progressing = status.conditions?.find((c) => c.type === 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {...base, ready: false, failed: true, reason: `${subject} exceeded its progress deadline: ${progressing.message ?? 'pods did not become available'}`}
  }
  const updated = status.updatedReplicas ?? 0
  if (updated < replicas) return {...base, ready: false, reason: `${updated} of ${replicas} replicas updated`}
  if ((status.replicas ?? 0) > updated) return {...base, ready: false, reason: `${(status.replicas ?? 0) - updated} old replicas are pending termination`}
  if (ready < updated) return {...base, ready: false, reason: `${ready} of ${updated} updated replicas available`}
  return {...base, ready: true}
}

/** Runs the two versions of a release as Deployments behind Services. */
export class KubernetesTarget implements Target {
  readonly kind = 'kubernetes'
  private readonly pollIntervalMs: number

  constructor(
    private readonly client: KubeClient,
    private readonly release: Release,
    private readonly clock: Clock,
    private readonly options: KubernetesTargetOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 2000
  }

  private ref(kind: 'Deployment' | 'Service', track: Track): ObjectRef {
    return {apiVersion: kind === 'Deployment' ? 'apps/v1' : 'v1', kind, namespace: this.release.namespace, name: trackName(this.release, track)}
  }

  /** Creates the stable Deployment and Service when absent (adopts them when present). */
  async ensureStable(signal: AbortSignal): Promise<void> {
    const desired = [buildDeployment(this.release, 'stable', this.release.image.ref), buildService(this.release, 'stable')]
    for (const object of desired) {
      const ref: ObjectRef = {apiVersion: object.apiVersion ?? 'v1', kind: object.kind ?? '', namespace: this.release.namespace, name: object.metadata?.name ?? ''}
      if ((await this.client.read(ref, signal)) === undefined) await this.client.apply(withOwnership(object, this.release.name), {force: false}, signal)
    }
  }

  /**
   * Refuses (exit 5) when the canary Deployment or Service exists and is not canary's: `start`
   * checks this before it saves a rollout, so the refusal leaves no rollout behind to abort.
   */
  async checkCanaryOwnership(signal: AbortSignal): Promise<void> {
    for (const kind of ['Deployment', 'Service'] as const) {
      const live = await this.client.read(this.ref(kind, 'canary'), signal)
      if (live !== undefined && !isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'update')
    }
  }

  async deployCanary(image: string, signal: AbortSignal): Promise<void> {
    await this.ensureStable(signal)
    await applyOwned(this.client, buildDeployment(this.release, 'canary', image), this.release.name, signal)
    await applyOwned(this.client, buildService(this.release, 'canary'), this.release.name, signal)
  }

  async readiness(track: Track, signal: AbortSignal): Promise<Readiness> {
    const ref = this.ref('Deployment', track)
    const live = await this.client.read(ref, signal)
    if (track === 'canary' && live !== undefined && !isManagedByCanary(live, this.release.name)) throw notOwnedError(live, 'use')
    return deploymentReadiness(live, `Deployment ${ref.namespace}/${ref.name}`)
  }

  /** Sets the stable Deployment's image to the canary's and waits until it is rolled out (exit 14 past the progress deadline). */
  async promote(image: string, signal: AbortSignal): Promise<void> {
    const ref = this.ref('Deployment', 'stable')
    const live = await this.client.read(ref, signal)
    if (live === undefined) throw new NotFoundError(`Deployment ${ref.namespace}/${ref.name}: cannot promote: the stable Deployment does not exist`, {subject: `Deployment ${ref.namespace}/${ref.name}`, suggestions: ['Run `canary start` first; it creates the stable Deployment.']})
    const containers = ((live.spec as {template?: {spec?: {containers?: Array<{name: string; image?: string}>}}} | undefined)?.template?.spec?.containers) ?? []
    const container = containers.find((c) => c.name === APP_CONTAINER) ?? containers[0]
    if (container === undefined) throw new NotFoundError(`Deployment ${ref.namespace}/${ref.name}: cannot promote: it has no containers`, {subject: `Deployment ${ref.namespace}/${ref.name}`})
    if (container.image !== image) {
      // A strategic merge patch changes one container's image and nothing else, on adopted Deployments too.
      await this.client.strategicMergePatch(ref, {spec: {template: {spec: {containers: [{name: container.name, image}]}}}}, signal)
    }
    await this.waitRolledOut('stable', this.release.analysis.progressDeadlineMs, signal)
  }

  /** Polls readiness until ready; a failed Deployment or the deadline is a TimeoutError (exit 14). */
  async waitRolledOut(track: Track, timeoutMs: number, signal: AbortSignal): Promise<Readiness> {
    const deadline = this.clock.now() + timeoutMs
    for (;;) {
      const readiness = await this.readiness(track, signal)
      this.options.onProgress?.(track, readiness)
      if (readiness.ready) return readiness
      const ref = this.ref('Deployment', track)
      if (readiness.failed === true || this.clock.now() >= deadline) {
        throw new TimeoutError(`Deployment ${ref.namespace}/${ref.name}: rollout did not finish within ${Math.round(timeoutMs / 1000)}s: ${readiness.reason ?? 'not ready'}`, {
          subject: `Deployment ${ref.namespace}/${ref.name}`,
          suggestions: [`Inspect the pods: kubectl -n ${ref.namespace} describe deployment ${ref.name}`, 'Raise spec.analysis.progressDeadline if the version is just slow to start.'],
        })
      }
      await this.clock.sleep(this.pollIntervalMs, signal)
    }
  }

  async removeCanary(signal: AbortSignal): Promise<void> {
    await deleteOwned(this.client, this.ref('Service', 'canary'), this.release.name, signal)
    await deleteOwned(this.client, this.ref('Deployment', 'canary'), this.release.name, signal)
  }
}
