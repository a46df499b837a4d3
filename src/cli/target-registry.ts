/**
 * Targets by kind: an exhaustive map (adding a kind to the spec fails the build until it is
 * registered here), never a silent default. Each factory builds every port the engine needs for
 * one release; heavy clients are imported lazily so the local path stays fast. This is part of
 * the composition root: the one place that names the adapters (src/rollout/ports.ts holds the
 * contract they implement).
 */
import {ConfigError} from '../errors.js'
import type {KubeConnectionOptions} from '../kube/client.js'
import {didYouMean} from '../config-file/did-you-mean.js'
import {TARGET_KINDS, type TargetKind} from '../release/release.js'
import type {RolloutPorts, TargetFactory, TargetInput} from '../rollout/ports.js'

/** Every target kind the spec can name, and how to build its ports; `kube` holds kubectl's connection flags. */
export function targetFactories(kube: KubeConnectionOptions = {}): Record<TargetKind, TargetFactory> {
  return {
    local: async (input) => (await import('../local/local-ports.js')).createLocalPorts(input),
    kubernetes: async (input) => (await import('../targets/kubernetes/adapters.js')).createKubernetesPorts({...input, kube}),
  } satisfies Record<TargetKind, TargetFactory>
}

/** The ports for `input.release.target`; an unknown kind is a ConfigError naming the known ones. */
export function portsFor(input: TargetInput, factories: Record<TargetKind, TargetFactory>): Promise<RolloutPorts> {
  const kind = input.release.target as string
  const factory = (factories as Record<string, TargetFactory | undefined>)[kind]
  if (factory === undefined) {
    const guess = didYouMean(kind, TARGET_KINDS)
    throw new ConfigError(`target ${kind}: unknown kind`, [], {suggestions: [`Use one of: ${TARGET_KINDS.join(', ')}.${guess === undefined ? '' : ` Did you mean ${guess}?`}`]})
  }
  return factory(input)
}
