/**
 * Deployments and Services of the two tracks: `<name>` (stable) and `<name>-canary`, labelled
 * `app`, `track` and `version` so each Service selects one track.
 */
import {parseImageRef} from '../release/image-ref.js'
import type {Release} from '../release/release.js'
import {names, releaseLabels} from './names.js'
import {bundledTemplates} from './template-set.js'
import {fillTemplate} from './template.js'
import type {BuildOptions, KubeObject, RenderState} from './types.js'

/** One of the two tracks of a release. */
export type Track = 'stable' | 'canary'

/** Stable Deployment and Service, plus the canary's when `state.canaryImage` is set. */
export function buildWorkloads(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const objects = [buildDeployment(release, 'stable', state.stableImage, options), buildService(release, 'stable', options)]
  if (state.canaryImage !== undefined) objects.push(buildDeployment(release, 'canary', state.canaryImage, options), buildService(release, 'canary', options))
  return objects
}

/** The Deployment of one track running `image`. */
export function buildDeployment(release: Release, track: Track, image: string, options: BuildOptions = {}): KubeObject {
  const templates = options.templates ?? bundledTemplates()
  const selector = trackSelector(release, track)
  const podLabels = {...selector, version: versionLabel(image)}
  const probe = release.probe === undefined ? undefined : {httpGet: {path: release.probe.path, port: release.probe.port}, periodSeconds: release.probe.periodSeconds, initialDelaySeconds: release.probe.initialDelaySeconds}
  return fillTemplate(templates.deployment, {
    name: trackName(release, track),
    namespace: release.namespace,
    release: release.name,
    track,
    labels: {...releaseLabels(release), ...podLabels},
    selector,
    podLabels: {...releaseLabels(release), ...podLabels},
    replicas: release.replicas,
    image,
    port: release.port,
    env: Object.keys(release.env).length === 0 ? undefined : Object.entries(release.env).map(([name, value]) => ({name, value})),
    resources: release.resources,
    readinessProbe: probe,
    // Liveness is more forgiving than readiness: restarting a slow pod makes things worse.
    livenessProbe: probe === undefined ? undefined : {...probe, failureThreshold: 6},
    affinity: release.spread ? {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: selector}, topologyKey: 'kubernetes.io/hostname'}]}} : undefined,
  }) as unknown as KubeObject
}

/** The Service selecting one track's pods. */
export function buildService(release: Release, track: Track, options: BuildOptions = {}): KubeObject {
  const templates = options.templates ?? bundledTemplates()
  const selector = trackSelector(release, track)
  return fillTemplate(templates.service, {
    name: trackName(release, track),
    namespace: release.namespace,
    release: release.name,
    track,
    labels: {...releaseLabels(release), ...selector},
    selector,
    port: release.port,
  }) as unknown as KubeObject
}

/** Deployment/Service name of a track. */
export function trackName(release: Release, track: Track): string {
  return track === 'stable' ? names(release).stable : names(release).canary
}

/** Labels that select one track's pods (also the Deployment selector, which is immutable). */
export function trackSelector(release: Release, track: Track): Record<string, string> {
  return {app: release.name, track}
}

/**
 * The `version` label for an image: its tag, else its digest, made a valid label value
 * (at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends).
 */
export function versionLabel(image: string): string {
  const ref = parseImageRef(image)
  const raw = ref.tag ?? ref.digest?.replace(':', '-') ?? 'latest'
  return raw.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'unknown'
}
