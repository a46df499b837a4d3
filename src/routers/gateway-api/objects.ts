/**
 * Gateway API HTTPRoute (kubernetes-sigs/gateway-api apis/v1/httproute_types.go): override rules
 * with header matches first, then the weighted rule. Weights are proportional (weight / sum), so
 * `totalWeight` needs no translation. Cookies have no match type: they are matched as a regex on
 * the `Cookie` header (RegularExpression support is implementation-specific). Mirroring is the
 * RequestMirror filter with `percent` (Gateway API v1.3+).
 */
import {stableWeight} from '../../rollout/core/weights.js'
import type {Release} from '../../release/release.js'
import {overrideRules} from '../../render/match-rules.js'
import {names, releaseLabels, requireIngress} from '../../render/names.js'
import {bundledTemplates} from '../../render/template-set.js'
import {fillTemplate} from '../../render/template.js'
import type {BuildOptions, KubeObject, RenderState} from '../../render/types.js'

/** The HTTPRoute for `state`. */
export function buildHttpRoute(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const templates = options.templates ?? bundledTemplates()
  const ingress = requireIngress(release)
  const n = names(release)
  const hasCanary = state.canaryImage !== undefined
  const pathMatch = {type: 'PathPrefix', value: ingress.path}
  const backend = (service: string, weight?: number) => ({name: service, port: release.port, ...(weight === undefined ? {} : {weight})})
  const gateway = ingress.gateway
  const parentRefs = gateway === undefined ? undefined : [{
    group: 'gateway.networking.k8s.io',
    kind: 'Gateway',
    name: gateway.name,
    ...(gateway.namespace === undefined ? {} : {namespace: gateway.namespace}),
    ...(gateway.sectionName === undefined ? {} : {sectionName: gateway.sectionName}),
  }]
  // Rules with the same path and header count are tried in list order, so header rules precede cookie rules.
  const overrides = (hasCanary ? overrideRules(release.match) : []).map((rule) => ({
    matches: [{path: pathMatch, headers: [{type: rule.type, name: rule.header, value: rule.value}]}],
    backendRefs: [backend(rule.track === 'canary' ? n.canary : n.stable)],
  }))
  const weightedRule = {
    matches: [{path: pathMatch}],
    ...(hasCanary && release.mirror !== undefined ? {filters: [{type: 'RequestMirror', requestMirror: {backendRef: {name: n.canary, port: release.port}, percent: release.mirror.percent}}]} : {}),
    backendRefs: hasCanary ? [backend(n.stable, stableWeight(state.weights)), backend(n.canary, state.weights.canary)] : [backend(n.stable, state.weights.total)],
  }
  return [fillTemplate(templates['http-route'], {
    name: n.apex,
    namespace: release.namespace,
    release: release.name,
    labels: releaseLabels(release),
    parentRefs,
    hostnames: [ingress.host],
    rules: [...overrides, weightedRule],
  })] as unknown as KubeObject[]
}
