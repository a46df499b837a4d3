/**
 * ingress-nginx: a main Ingress to the stable Service and, while a canary runs, a second Ingress
 * for the same host and path marked `canary: "true"` (kubernetes/ingress-nginx
 * docs/user-guide/nginx-configuration/annotations.md#canary). The controller honours one canary
 * Ingress per host/path, and checks header → cookie → weight in that order.
 */
import {DEFAULT_TOTAL_WEIGHT, type Weights} from '../../rollout/core/weights.js'
import type {Release} from '../../release/release.js'
import {names, releaseLabels, requireIngress} from '../../render/names.js'
import {bundledTemplates} from '../../render/template-set.js'
import {fillTemplate} from '../../render/template.js'
import type {BuildOptions, KubeObject, RenderState} from '../../render/types.js'
import {assertNever} from '../../rollout/core/assert-never.js'

const PREFIX = 'nginx.ingress.kubernetes.io/'

/** Main Ingress, plus the canary Ingress when a canary runs. */
export function buildNginxIngress(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const templates = options.templates ?? bundledTemplates()
  const ingress = requireIngress(release)
  const n = names(release)
  const common = {
    namespace: release.namespace,
    release: release.name,
    labels: releaseLabels(release),
    className: ingress.className,
    tls: ingress.tls === undefined ? undefined : [{hosts: [ingress.host], secretName: ingress.tls.secretName}],
  }
  const main = fillTemplate(templates.ingress, {...common, name: n.apex, annotations: emptyToUndefined(stickyAnnotations(release)), rules: rules(ingress.host, ingress.path, n.stable, release.port)})
  if (state.canaryImage === undefined) return [main as unknown as KubeObject]
  const canary = fillTemplate(templates.ingress, {...common, name: n.canaryIngress, annotations: nginxCanaryAnnotations(release, state.weights), rules: rules(ingress.host, ingress.path, n.canary, release.port)})
  return [main, canary] as unknown as KubeObject[]
}

/** The canary Ingress annotations for `weights` (sorted, all values strings as Kubernetes requires). */
export function nginxCanaryAnnotations(release: Release, weights: Weights): Record<string, string> {
  const annotations: Record<string, string> = {[`${PREFIX}canary`]: 'true'}
  // The Lua balancer uses canary-weight-total only above 100 (balancer.lua), so smaller totals
  // (which load-release only accepts when they divide 100) are scaled to percent.
  if (weights.total >= DEFAULT_TOTAL_WEIGHT) {
    annotations[`${PREFIX}canary-weight`] = String(weights.canary)
    if (weights.total !== DEFAULT_TOTAL_WEIGHT) annotations[`${PREFIX}canary-weight-total`] = String(weights.total)
  } else {
    annotations[`${PREFIX}canary-weight`] = String((weights.canary * DEFAULT_TOTAL_WEIGHT) / weights.total)
  }
  const header = release.match?.header
  if (header !== undefined) {
    annotations[`${PREFIX}canary-by-header`] = header.name
    switch (header.kind) {
      case 'always-never':
        break
      case 'exact':
        annotations[`${PREFIX}canary-by-header-value`] = header.value
        break
      case 'pattern':
        annotations[`${PREFIX}canary-by-header-pattern`] = header.pattern
        break
      default:
        assertNever(header)
    }
  }
  if (release.match?.cookie !== undefined) annotations[`${PREFIX}canary-by-cookie`] = release.match.cookie.name
  // Session-affinity annotations are among the few a canary Ingress does not inherit from the main one.
  Object.assign(annotations, stickyAnnotations(release))
  return sortKeys(annotations)
}

function stickyAnnotations(release: Release): Record<string, string> {
  if (release.sticky === undefined) return {}
  return {
    [`${PREFIX}affinity`]: 'cookie',
    [`${PREFIX}session-cookie-name`]: release.sticky.cookie,
    ...(release.sticky.maxAgeSeconds === undefined ? {} : {[`${PREFIX}session-cookie-max-age`]: String(release.sticky.maxAgeSeconds)}),
  }
}

/** One rule: `host` + `path` (Prefix) → `service:port`. */
export function rules(host: string, path: string, service: string, port: number): unknown[] {
  return [{host, http: {paths: [{path, pathType: 'Prefix', backend: {service: {name: service, port: {number: port}}}}]}}]
}

function emptyToUndefined(record: Record<string, string>): Record<string, string> | undefined {
  return Object.keys(record).length === 0 ? undefined : record
}

function sortKeys(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)))
}
