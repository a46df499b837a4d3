/**
 * ingress-nginx (`spec.ingress.router: nginx`): a main Ingress plus a canary Ingress carrying the
 * `nginx.ingress.kubernetes.io/canary-*` annotations (objects.ts), driven on a cluster by
 * kube-router.ts, judged with the controller's own Prometheus metrics.
 */
import {ConflictError} from '../../errors.js'
import {DEFAULT_TOTAL_WEIGHT} from '../../rollout/core/weights.js'
import type {KubeObject} from '../../render/types.js'
import {describeObject} from '../../render/validate-objects.js'
import {counterAndHistogramQueries, escapeLabel, type RouterDefinition} from '../router-definition.js'
import {NginxIngressRouter} from './kube-router.js'
import {buildNginxIngress} from './objects.js'

export const NGINX = {
  kind: 'nginx',
  // ingress-nginx mirrors 100 % of requests (mirror-target) and cannot sample a percentage.
  limits: {mirror: 'ingress-nginx can only mirror every request (mirror-target), not a percentage'},
  validate: ({totalWeight}) => {
    // ingress-nginx's Lua balancer only honours canary-weight-total above 100 (balancer.lua), so smaller totals are rescaled to percent.
    if (totalWeight >= DEFAULT_TOTAL_WEIGHT || DEFAULT_TOTAL_WEIGHT % totalWeight === 0) return []
    return [{at: ['spec', 'totalWeight'], message: `router nginx cannot use totalWeight ${totalWeight}: ingress-nginx ignores canary-weight-total below 100, and ${totalWeight} does not divide 100`, suggestion: 'use 100 or a larger total such as 1000'}]
  },
  build: buildNginxIngress,
  checkCollisions: assertNoNginxCollision,
  rbac: {
    // The canary Ingress is deleted when the rollout ends.
    rules: () => [{apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'create', 'patch', 'delete']}],
  },
  kubeRouter: (client, release) => new NginxIngressRouter(client, release),
  builtInQueries: (context) => {
    // The `canary` label is non-empty for requests the canary upstream served (internal/ingress/metric/collectors/socket.go).
    const selector = `namespace="${escapeLabel(context.namespace)}",ingress="${escapeLabel(context.ingress)}",canary${context.track === 'canary' ? '!=' : '='}""`
    return counterAndHistogramQueries({requests: 'nginx_ingress_controller_requests', statusLabel: 'status', buckets: 'nginx_ingress_controller_response_duration_seconds_bucket'}, selector, context.interval)
  },
} as const satisfies RouterDefinition

/**
 * ingress-nginx honours one canary Ingress per host and path (annotations.md "Known Limitations"),
 * and picks one arbitrarily among main Ingresses for the same host and path: refuse both.
 */
function assertNoNginxCollision(rendered: readonly KubeObject[], existing: readonly KubeObject[]): void {
  const isCanary = (o: KubeObject) => o.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary'] === 'true'
  for (const ours of rendered.filter((o) => o.kind === 'Ingress')) {
    const ourRoutes = hostPaths(ours)
    for (const theirs of existing.filter((o) => o.kind === 'Ingress' && isCanary(o) === isCanary(ours))) {
      if (theirs.metadata?.name === ours.metadata.name && (theirs.metadata?.namespace ?? 'default') === (ours.metadata.namespace ?? 'default')) continue
      const shared = hostPaths(theirs).find((route) => ourRoutes.includes(route))
      if (shared === undefined) continue
      throw new ConflictError(`${describeObject(ours)}: conflicts with ${describeObject(theirs)}: both are ${isCanary(ours) ? 'canary' : 'main'} Ingresses for ${shared}, and ingress-nginx honours only one`, {
        subject: describeObject(theirs),
        suggestions: [isCanary(ours) ? 'Finish or abort the other canary for this host and path first, or delete its canary Ingress.' : 'Give this release its own host or path, or let it own the existing Ingress.'],
      })
    }
  }
}

function hostPaths(object: KubeObject): string[] {
  const rules = ((object.spec as {rules?: Array<{host?: string; http?: {paths?: Array<{path?: string}>}}>} | undefined)?.rules) ?? []
  return rules.flatMap((rule) => (rule.http?.paths ?? []).map((p) => `${rule.host ?? '*'}${p.path ?? '/'}`))
}
