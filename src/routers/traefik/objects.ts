/**
 * Traefik CRDs: a TraefikService that splits by weight (sticky when asked), wrapped in a
 * mirroring TraefikService when the spec mirrors, and an IngressRoute whose header/cookie routes
 * precede the weighted one (traefik/traefik docs/content/reference/routing-configuration/
 * kubernetes/crd/http/traefikservice.md). Group `traefik.io` by default, `traefik.containo.us` on request.
 */
import {stableWeight} from '../../rollout/core/weights.js'
import type {Release} from '../../release/release.js'
import {overrideRules} from '../../render/match-rules.js'
import {names, releaseLabels, requireIngress} from '../../render/names.js'
import {bundledTemplates} from '../../render/template-set.js'
import {fillTemplate} from '../../render/template.js'
import {hostPathRule, overrideRule, TRAEFIK_PRIORITY} from '../../render/traefik-rules.js'
import type {BuildOptions, KubeObject, RenderState} from '../../render/types.js'

/** TraefikService(s) and the IngressRoute for `state`. */
export function buildTraefikCrd(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const templates = options.templates ?? bundledTemplates()
  const ingress = requireIngress(release)
  const n = names(release)
  const apiVersion = `${ingress.traefikApiGroup}/v1alpha1`
  const common = {apiVersion, namespace: release.namespace, release: release.name, labels: releaseLabels(release)}
  const hasCanary = state.canaryImage !== undefined
  const weighted = {
    services: [
      {name: n.stable, port: release.port, weight: hasCanary ? stableWeight(state.weights) : state.weights.total},
      ...(hasCanary ? [{name: n.canary, port: release.port, weight: state.weights.canary}] : []),
    ],
    ...(release.sticky === undefined ? {} : {sticky: {cookie: {name: release.sticky.cookie, httpOnly: true, ...(release.sticky.maxAgeSeconds === undefined ? {} : {maxAge: release.sticky.maxAgeSeconds})}}}),
  }
  const objects: Record<string, unknown>[] = []
  if (hasCanary && release.mirror !== undefined) {
    objects.push(fillTemplate(templates['traefik-service'], {...common, name: n.apex, spec: {mirroring: {name: n.weighted, kind: 'TraefikService', mirrors: [{name: n.canary, port: release.port, percent: release.mirror.percent}]}}}))
    objects.push(fillTemplate(templates['traefik-service'], {...common, name: n.weighted, spec: {weighted}}))
  } else {
    objects.push(fillTemplate(templates['traefik-service'], {...common, name: n.apex, spec: {weighted}}))
  }
  const routes = [
    ...(hasCanary ? overrideRules(release.match) : []).map((rule) => ({
      kind: 'Rule',
      match: overrideRule(ingress.host, ingress.path, rule, ingress.traefikApiGroup),
      priority: TRAEFIK_PRIORITY[rule.source],
      services: [{name: rule.track === 'canary' ? n.canary : n.stable, port: release.port}],
    })),
    {kind: 'Rule', match: hostPathRule(ingress.host, ingress.path), priority: TRAEFIK_PRIORITY.weighted, services: [{name: n.apex, kind: 'TraefikService'}]},
  ]
  objects.push(fillTemplate(templates['ingress-route'], {...common, name: n.apex, routes, tls: ingress.tls === undefined ? undefined : {secretName: ingress.tls.secretName}}))
  return objects as unknown as KubeObject[]
}
