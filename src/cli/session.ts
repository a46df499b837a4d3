/**
 * The composition root of the lifecycle commands: load the spec, check NAME, build the target's
 * ports (src/cli/target-registry.ts), the plan and the process's one wall clock. Kept here, beside
 * the CLI, so the rollout layer below never names an adapter or a flag.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {NotFoundError, UsageError} from '../errors.js'
import {resolveCanaryImage} from '../release/image-ref.js'
import type {Release} from '../release/release.js'
import type {TickResult} from '../rollout/engine.js'
import {planFromRelease} from '../rollout/plan-from-release.js'
import type {Clock} from '../rollout/ports.js'
import type {RolloutSession} from '../rollout/services.js'
import {loadReleaseCached} from '../rollout/spec-cache.js'
import type {SessionOverrides} from './release-flags.js'
import {portsFor, targetFactories} from './target-registry.js'

/** Wall-clock time, the only one in the CLI; `sleep` rejects with the signal's reason when aborted. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, undefined, {signal})
  },
}

/** A session plus the release it was built from. */
export interface OpenedSession extends RolloutSession {
  readonly release: Release
  readonly specFile: string
}

/** Loads `file`, checks that NAME (if given) is the release it defines, and builds the ports. */
export async function openSession(file: string, name: string | undefined, onTick?: (tick: TickResult) => void, overrides: SessionOverrides = {}): Promise<OpenedSession> {
  const loaded = await loadReleaseCached(file)
  const release = overrides.target === undefined ? loaded : {...loaded, target: overrides.target}
  if (name !== undefined && name !== release.name) {
    throw new NotFoundError(`release ${name}: not found in ${file}`, {subject: file, suggestions: [`${file} defines release ${release.name}; omit NAME or pass another spec with -f.`]})
  }
  const ports = await portsFor({release, specFile: file, clock: systemClock}, targetFactories(overrides.kube))
  return {name: release.name, plan: planFromRelease(release), specImage: release.image.ref, ports, clock: systemClock, release, specFile: file, ...(onTick === undefined ? {} : {onTick})}
}

/** The canary image for `--image`: a full reference, or a tag/digest applied to the spec's image. */
export function canaryImageFor(release: Release, refOrTag: string): string {
  try {
    return resolveCanaryImage(release.image, refOrTag).ref
  } catch (error) {
    throw new UsageError(`--image ${refOrTag}: ${(error as Error).message}`, {suggestions: ['Pass a tag (v2), a digest (sha256:…) or a full reference (ghcr.io/acme/my-app:v2).']})
  }
}
