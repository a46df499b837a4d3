/**
 * Traefik 1.x: one Ingress listing both Services under the same path, split by the
 * `traefik.ingress.kubernetes.io/service-weights` annotation (traefik/traefik v1.7.34
 * docs/configuration/backends/kubernetes.md). Weights are percentages with at most 3 decimals;
 * one backend may be omitted and receives the remainder of 100 %, so we list only the canary and
 * let stable take the rest: no rounding can make the sum miss 100 %.
 */
import type {Weights} from '../../rollout/core/weights.js'
import type {Release} from '../../release/release.js'
import {names, releaseLabels, requireIngress} from '../../render/names.js'
import {bundledTemplates} from '../../render/template-set.js'
import {fillTemplate} from '../../render/template.js'
import type {BuildOptions, KubeObject, RenderState} from '../../render/types.js'

const PREFIX = 'traefik.ingress.kubernetes.io/'

/** The weighted Ingress for `state`. */
export function buildTraefikV1Ingress(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const templates = options.templates ?? bundledTemplates()
  const ingress = requireIngress(release)
  const n = names(release)
  const hasCanary = state.canaryImage !== undefined
  const backend = (service: string) => ({path: ingress.path, pathType: 'Prefix', backend: {service: {name: service, port: {number: release.port}}}})
  const annotations: Record<string, string> = {
    // Traefik 1.x selects Ingresses by this annotation, not by spec.ingressClassName.
    'kubernetes.io/ingress.class': ingress.className ?? 'traefik',
    ...(hasCanary ? {[`${PREFIX}service-weights`]: serviceWeights(n.canary, state.weights)} : {}),
    ...(release.sticky === undefined ? {} : {[`${PREFIX}affinity`]: 'true', [`${PREFIX}session-cookie-name`]: release.sticky.cookie}),
  }
  return [fillTemplate(templates.ingress, {
    name: n.apex,
    namespace: release.namespace,
    release: release.name,
    labels: releaseLabels(release),
    annotations,
    tls: ingress.tls === undefined ? undefined : [{hosts: [ingress.host], secretName: ingress.tls.secretName}],
    rules: [{host: ingress.host, http: {paths: hasCanary ? [backend(n.stable), backend(n.canary)] : [backend(n.stable)]}}],
  })] as unknown as KubeObject[]
}

/** The service-weights value: the canary's percentage with up to 3 decimals, stable omitted (it gets the remainder). */
export function serviceWeights(canaryService: string, weights: Weights): string {
  return `${canaryService}: ${formatPercent(weights)}\n`
}

/** `canary / total` as a percentage with at most 3 decimals, e.g. `20%`, `0.1%`, `12.5%`. */
export function formatPercent(weights: Weights): string {
  const thousandths = Math.round((weights.canary * 100_000) / weights.total)
  return `${thousandths / 1000}%`
}
