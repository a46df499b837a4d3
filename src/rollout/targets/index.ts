/**
 * Targets by kind: an exhaustive map (adding a kind to the spec fails the build until it is
 * registered here), never a silent default. Each factory builds every port the engine needs for
 * one release; heavy clients are imported lazily so the local path stays fast.
 */
import {ConfigError} from '../../errors.js'
import {didYouMean} from '../../config-file/did-you-mean.js'
import {TARGET_KINDS, type Release, type TargetKind} from '../../release/release.js'
import type {RolloutState} from '../core/types.js'
import type {OperationLock} from '../engine.js'
import type {MetricSource, RolloutStore, Target, TrafficRouter} from '../ports.js'
import type {KubeConnectionOptions} from '../../kube/client.js'

/** Where users reach the release, for `status` (`proxy.url` in `--json`). */
export interface Endpoints {
  readonly proxyUrl?: string
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

/** What `canary down` stopped. */
export interface DownReport {
  readonly stopped: readonly string[]
}

/** What a target factory gets. */
export interface TargetInput {
  readonly release: Release
  /** The spec file; local state lives beside it in `.canary/`. */
  readonly specFile: string
  /** kubectl connection flags for the Kubernetes target (#5). */
  readonly kube?: KubeConnectionOptions
}

/** Builds the ports of one target kind. */
export type TargetFactory = (input: TargetInput) => Promise<RolloutPorts>

/** Every target kind the spec can name, and how to build its ports. */
export const TARGET_FACTORIES = {
  local: async (input) => (await import('../../local/local-ports.js')).createLocalPorts(input),
  kubernetes: async (input) => (await import('../../targets/kubernetes/adapters.js')).createKubernetesPorts(input),
} satisfies Record<TargetKind, TargetFactory>

/** The ports for `input.release.target`; an unknown kind is a ConfigError naming the known ones. */
export function portsFor(input: TargetInput): Promise<RolloutPorts> {
  const kind = input.release.target as string
  const factory = (TARGET_FACTORIES as Record<string, TargetFactory | undefined>)[kind]
  if (factory === undefined) {
    const guess = didYouMean(kind, TARGET_KINDS)
    throw new ConfigError(`target ${kind}: unknown kind`, [], {suggestions: [`Use one of: ${TARGET_KINDS.join(', ')}.${guess === undefined ? '' : ` Did you mean ${guess}?`}`]})
  }
  return factory(input)
}
