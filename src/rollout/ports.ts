/**
 * Every port of the rollout layer, and nothing else: the contracts a target plugs in through
 * (`RolloutPorts`, built by a `TargetFactory` from a `TargetInput`) and the ports the engine drives
 * (`TrafficRouter`, `Target`, `MetricSource`, `RolloutStore`, `OperationLock`, `Clock`). Adapters
 * import this file and nothing above it; the composition root (src/cli/target-registry.ts) names
 * the adapters (src/local/, src/targets/kubernetes/, src/routers/<kind>/). Every I/O method takes an AbortSignal; time comes from a Clock so tests never sleep.
 */
import type {Release} from '../release/release.js'
import type {WindowMetrics} from './core/metrics.js'
import type {RolloutState} from './core/types.js'
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

/** Serializes operations on one release across processes (a lock file locally). */
export interface OperationLock {
  /** Takes the lock, waiting at most `waitMs`; throws ConflictError when another operation keeps it. */
  acquire(waitMs: number, signal: AbortSignal): Promise<() => Promise<void>>
}

/** Where users reach the release, for `status` (`proxy.url` in `--json`). */
export interface Endpoints {
  readonly proxyUrl?: string
}

/** What `canary down` stopped. */
export interface DownReport {
  readonly stopped: readonly string[]
}

/** Every port of one release, ready for the engine. */
export interface RolloutPorts {
  readonly router: TrafficRouter
  readonly target: Target
  readonly metrics: MetricSource
  readonly store: RolloutStore<RolloutState>
  readonly lock?: OperationLock
  /** Makes sure the stable version and the data plane run (starts the local daemon on demand). */
  prepare(stableImage: string, signal: AbortSignal): Promise<void>
  /** Stops what `prepare` started in this process, if anything (a failed `start` leaves nothing running). */
  undoPrepare?(signal: AbortSignal): Promise<void>
  /** Checks that the data plane is there, without starting anything (UnreachableError otherwise). */
  check(signal: AbortSignal): Promise<void>
  endpoints(): Promise<Endpoints>
  /** Stops everything this release started and removes its state (`canary down`). */
  down(signal: AbortSignal): Promise<DownReport>
}

/**
 * What every target factory gets. Target-specific inputs (kubectl's connection flags) are not
 * here: the composition root closes over them when it builds that target's factory.
 */
export interface TargetInput {
  readonly release: Release
  /** The spec file; local state lives beside it in `.canary/`. */
  readonly specFile: string
  /** The one wall clock of the process (tests pass a manual one). */
  readonly clock: Clock
}

/** Builds the ports of one target kind. */
export type TargetFactory = (input: TargetInput) => Promise<RolloutPorts>
