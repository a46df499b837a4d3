/**
 * Traefik's file provider: the dynamic configuration (routers + weighted/mirroring services with
 * explicit server URLs) in a ConfigMap that Traefik mounts and watches (`--providers.file.watch`),
 * the setup of seed 003. Router and service names are prefixed `<namespace>-<name>` so several
 * releases can share one directory.
 */
import {stringify} from 'yaml'

import {stableWeight} from '../../rollout/core/weights.js'
import type {Release} from '../../release/release.js'
import {overrideRules} from '../../render/match-rules.js'
import {names, releaseLabels, serviceUrl, requireIngress} from '../../render/names.js'
import {bundledTemplates} from '../../render/template-set.js'
import {fillTemplate} from '../../render/template.js'
import {hostPathRule, overrideRule, TRAEFIK_PRIORITY} from '../../render/traefik-rules.js'
import type {BuildOptions, KubeObject, RenderState} from '../../render/types.js'

/** The ConfigMap holding the dynamic configuration under `<namespace>-<name>.yaml`. */
export function buildTraefikFile(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const templates = options.templates ?? bundledTemplates()
  const n = names(release)
  const text = stringify(buildTraefikFileConfig(release, state), {lineWidth: 0, aliasDuplicateObjects: false})
  return [fillTemplate(templates['config-map'], {name: n.traefikFileConfig, namespace: release.namespace, release: release.name, labels: releaseLabels(release), data: {[`${n.traefikFilePrefix}.yaml`]: text}})] as unknown as KubeObject[]
}

/** Traefik dynamic configuration (file provider format) for `state`. */
export function buildTraefikFileConfig(release: Release, state: RenderState): {http: {routers: Record<string, unknown>; services: Record<string, unknown>}} {
  const ingress = requireIngress(release)
  const n = names(release)
  const prefix = n.traefikFilePrefix
  const hasCanary = state.canaryImage !== undefined
  const tls = ingress.tls === undefined ? {} : {tls: {}}
  const routers: Record<string, unknown> = {}
  const services: Record<string, unknown> = {}
  const trackService = {stable: `${prefix}-stable`, canary: `${prefix}-canary`} as const

  routers[prefix] = {rule: hostPathRule(ingress.host, ingress.path), priority: TRAEFIK_PRIORITY.weighted, service: prefix, ...tls}
  const overrides = hasCanary ? overrideRules(release.match) : []
  overrides.forEach((rule, index) => {
    routers[`${prefix}-${rule.source}-${index}`] = {rule: overrideRule(ingress.host, ingress.path, rule, ingress.traefikApiGroup), priority: TRAEFIK_PRIORITY[rule.source], service: trackService[rule.track], ...tls}
  })

  const weighted = {
    services: [
      {name: trackService.stable, weight: hasCanary ? stableWeight(state.weights) : state.weights.total},
      ...(hasCanary ? [{name: trackService.canary, weight: state.weights.canary}] : []),
    ],
    ...(release.sticky === undefined ? {} : {sticky: {cookie: {name: release.sticky.cookie, httpOnly: true, ...(release.sticky.maxAgeSeconds === undefined ? {} : {maxAge: release.sticky.maxAgeSeconds})}}}),
  }
  if (hasCanary && release.mirror !== undefined) {
    services[prefix] = {mirroring: {service: `${prefix}-weighted`, mirrors: [{name: trackService.canary, percent: release.mirror.percent}]}}
    services[`${prefix}-weighted`] = {weighted}
  } else {
    services[prefix] = {weighted}
  }
  services[trackService.stable] = {loadBalancer: {servers: [{url: serviceUrl(n.stable, release.namespace, release.port)}]}}
  if (hasCanary) services[trackService.canary] = {loadBalancer: {servers: [{url: serviceUrl(n.canary, release.namespace, release.port)}]}}
  return {http: {routers, services}}
}
