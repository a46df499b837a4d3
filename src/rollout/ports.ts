/**
 * The ports the rollout engine drives. Each implementation lives in its own file
 * (src/routers/<kind>/, src/targets/kubernetes/, src/local/) and is chosen by an exhaustive factory map.
 * Every I/O method takes an AbortSignal; time comes from a Clock so tests never sleep.
 */
import type {WindowMetrics} from './core/metrics.js'
import type {Weights} from './core/weights.js'

/** Which release, where. `namespace` is the Kubernetes namespace, or `default` locally. */
export interface ReleaseRef {
  readonly name: string
  readonly namespace: string
}

export type Track = 'stable' | 'canary'

/**
 * Splits traffic between stable and canary. Implementations are idempotent. What a router can
 * express besides weights is checked when the spec is read (src/routers/capabilities.ts), so the
 * engine never meets a spec its router cannot serve.
 */
export interface TrafficRouter {
  readonly kind: string
  /** Create or adopt the routing objects for the release (canary at 0). Safe to call every tick. */
  reconcile(signal: AbortSignal): Promise<void>
  setWeights(weights: Weights, signal: AbortSignal): Promise<void>
  /** Read the split back from the world: the only truth after a restart. */
  getWeights(signal: AbortSignal): Promise<Weights>
  /** Remove canary routing: after promote the new stable takes 100 %, after abort the old one does. */
  finalize(outcome: 'promoted' | 'aborted', signal: AbortSignal): Promise<void>
}

export interface Readiness {
  readonly ready: boolean
  /** Replicas ready / wanted, for progress output. */
  readonly readyReplicas: number
  readonly replicas: number
  /** Why not ready (crash loop, probe failing, progress deadline exceeded). */
  readonly reason?: string
  /** True when the target knows the version will never become ready (e.g. progress deadline). */
  readonly failed?: boolean
}

/** Runs the workload: the stable and canary versions. Knows nothing about traffic. */
export interface Target {
  readonly kind: string
  /** Start (or adopt) the canary version with this image. */
  deployCanary(image: string, signal: AbortSignal): Promise<void>
  readiness(track: Track, signal: AbortSignal): Promise<Readiness>
  /** Make the canary's image the stable version and wait until stable runs it. */
  promote(image: string, signal: AbortSignal): Promise<void>
  /** Stop and remove the canary version. Idempotent. */
  removeCanary(signal: AbortSignal): Promise<void>
}

/** Reads per-version request counts, errors and latency for a window. */
export interface MetricSource {
  readonly kind: string
  read(window: {readonly sinceMs: number; readonly untilMs: number}, signal: AbortSignal): Promise<WindowMetrics>
}

/** A stored value plus the version token that guards the next write (resourceVersion, file revision). */
export interface Versioned<T> {
  readonly value: T
  readonly version: string
}

/**
 * A save that is written but not yet visible (see `RolloutStore.stage`). Exactly one of `commit`
 * or `discard` is called.
 */
export interface StagedSave<T> {
  /** Makes the staged value the stored one; ConflictError when the stored version moved meanwhile. */
  commit(signal: AbortSignal): Promise<Versioned<T>>
  /** Forgets the staged value; the stored one is untouched. Never throws. */
  discard(): Promise<void>
}

/**
 * Persists rollout state with optimistic concurrency: `save` fails with ConflictError when the
 * stored version is not `expectedVersion` (undefined = must not exist yet). Never a lost update.
 */
export interface RolloutStore<T> {
  load(signal: AbortSignal): Promise<Versioned<T> | undefined>
  save(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<Versioned<T>>
  /**
   * Does everything a save can fail at (space, permissions, a lost race) without making the value
   * visible, so the engine can stage, act, then commit: a state that cannot be saved stops the
   * tick before the world changes.
   */
  stage(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<StagedSave<T>>
  /** Remove the state (after `canary down`); idempotent. */
  remove(signal: AbortSignal): Promise<void>
}

export interface Clock {
  now(): number
  sleep(ms: number, signal: AbortSignal): Promise<void>
}
