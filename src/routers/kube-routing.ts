/**
 * What the Kubernetes routers share: the render state they build from, and applying a set of
 * routing objects with ownership and write-on-change. Each Kubernetes router builds its objects only
 * with its own pure builder (`<kind>/objects.ts`, what `canary render` prints), never by hand.
 */
import type {RenderState} from '../render/types.js'
import {weights as makeWeights, type Weights} from '../rollout/core/weights.js'
import type {Release} from '../release/release.js'
import {applyOwned} from '../kube/apply.js'
import type {KubeClient} from '../kube/client.js'
import type {KubeObject} from '../kube/objects.js'

/**
 * Routing objects depend on whether a canary runs, not on its image; the builders render canary
 * routes whenever `canaryImage` is set, so routers pass this marker.
 */
const CANARY_RUNS = 'routing-only'

/** The render state for routing objects: with a canary at `weights`, or stable only. */
export function routingState(release: Release, weights: Weights | undefined): RenderState {
  return weights === undefined
    ? {stableImage: release.image.ref, weights: makeWeights(0, release.totalWeight)}
    : {stableImage: release.image.ref, canaryImage: CANARY_RUNS, weights}
}

/** Applies each object canary owns, in order; returns how many were actually written. */
export async function applyAllOwned(client: KubeClient, objects: readonly KubeObject[], release: Release, signal: AbortSignal): Promise<number> {
  let written = 0
  for (const object of objects) {
    if ((await applyOwned(client, object, release.name, signal)).written) written += 1
  }
  return written
}

/** The release's "no canary traffic" split. */
export function zeroWeights(release: Release): Weights {
  return makeWeights(0, release.totalWeight)
}
