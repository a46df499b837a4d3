/**
 * The least privilege canary needs in a release's namespace: a ServiceAccount, a Role and a
 * RoleBinding. The rules are derived from the calls canary makes (src/kube/client.ts callers):
 *
 * - writes are server-side apply (`patch`; `create` too, because applying an object that does not
 *   exist yet creates it), reads are `get`, cleanup is `delete`;
 * - the rollout state ConfigMap is created (`create`) and then replaced under a resourceVersion
 *   precondition (`update`);
 * - the stable Deployment's image is changed at promote with a strategic merge patch (`patch`);
 * - the in-cluster proxy's metrics are read through `pods/proxy` (`get`) after listing its pods;
 * - the in-cluster proxy's ServiceAccount is checked (`get`, that one name) before its Deployment is applied;
 * - the in-cluster proxy's admin token Secret is read (`get`, that one name) and created when absent
 *   (`create`, which RBAC cannot narrow by name: the name is not known when a create is authorized).
 *
 * Only the resources of the release's router are granted. `list`/`watch` on ConfigMaps go to the
 * proxy's own ServiceAccount (it follows its routing ConfigMap), never to the CLI's.
 *
 * The proxy's ServiceAccount, Role and RoleBinding are emitted here, for an administrator to apply
 * once, and not applied by `canary start`: creating a RoleBinding needs rights on `roles` and
 * `rolebindings` plus every permission it grants (Kubernetes' escalation check), which a
 * least-privilege CI account should not have.
 */
import {names} from '../../render/names.js'
import type {Release} from '../../release/release.js'
import {MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASE_LABEL, type KubeObject} from '../../kube/objects.js'

/** One PolicyRule. */
export interface PolicyRule {
  readonly apiGroups: readonly string[]
  readonly resources: readonly string[]
  readonly verbs: readonly string[]
  /** Only these object names (get/update/patch/delete, and list/watch with a metadata.name field selector). */
  readonly resourceNames?: readonly string[]
}

/** The Role rules canary needs for `release`: the objects its router writes, and nothing else. */
export function rbacRules(release: Release): PolicyRule[] {
  const router = release.ingress?.router ?? 'proxy'
  const scrapesProxy = router === 'proxy' && release.analysis.prometheus === undefined
  const rules: PolicyRule[] = [
    {apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch', 'delete']},
    {apiGroups: [''], resources: ['services'], verbs: ['get', 'create', 'patch', 'delete']},
    // State: created, then replaced under a resourceVersion precondition; the proxy's routing: applied.
    {apiGroups: [''], resources: ['configmaps'], verbs: router === 'proxy' ? ['get', 'create', 'update', 'patch', 'delete'] : ['get', 'create', 'update', 'delete']},
  ]
  switch (router) {
    case 'nginx':
      // The canary Ingress is deleted when the rollout ends.
      rules.push({apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'create', 'patch', 'delete']})
      break
    case 'traefik-v1':
      rules.push({apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'create', 'patch']})
      break
    case 'traefik':
      rules.push(
        {apiGroups: [release.ingress?.traefikApiGroup ?? 'traefik.io'], resources: ['traefikservices'], verbs: release.mirror === undefined ? ['get', 'create', 'patch'] : ['get', 'create', 'patch', 'delete']},
        {apiGroups: [release.ingress?.traefikApiGroup ?? 'traefik.io'], resources: ['ingressroutes'], verbs: ['get', 'create', 'patch']},
      )
      break
    case 'gateway-api':
      rules.push({apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'create', 'patch']})
      break
    case 'proxy':
      // The proxy pods' ServiceAccount must exist (checked); their admin token: read when present, created when absent.
      rules.push(
        {apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [names(release).proxy], verbs: ['get']},
        {apiGroups: [''], resources: ['secrets'], resourceNames: [names(release).proxyAdminSecret], verbs: ['get']},
        {apiGroups: [''], resources: ['secrets'], verbs: ['create']},
      )
      if (scrapesProxy) rules.push({apiGroups: [''], resources: ['pods'], verbs: ['list']}, {apiGroups: [''], resources: ['pods/proxy'], verbs: ['get']})
      break
    case 'traefik-file':
      break
  }
  return rules
}

/** ServiceAccount, Role and RoleBinding for running canary against `release` (e.g. from CI). */
export function buildRbac(release: Release, serviceAccount = 'canary'): KubeObject[] {
  const labels = {[MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [RELEASE_LABEL]: release.name}
  const roleName = `canary-${release.name}`
  const router = release.ingress?.router ?? 'proxy'
  const objects: KubeObject[] = [
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: serviceAccount, namespace: release.namespace, labels}},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: roleName, namespace: release.namespace, labels}, rules: rbacRules(release).map((r) => ({apiGroups: [...r.apiGroups], resources: [...r.resources], ...(r.resourceNames === undefined ? {} : {resourceNames: [...r.resourceNames]}), verbs: [...r.verbs]}))},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: roleName, namespace: release.namespace, labels}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName}, subjects: [{kind: 'ServiceAccount', name: serviceAccount, namespace: release.namespace}]},
  ]
  if (router === 'proxy') {
    // The in-cluster proxy reads (and watches) its own routing ConfigMap and nothing else.
    const proxyName = names(release).proxy
    objects.push(
      {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: proxyName, namespace: release.namespace, labels}},
      {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: proxyName, namespace: release.namespace, labels}, rules: [{apiGroups: [''], resources: ['configmaps'], resourceNames: [names(release).proxyConfig], verbs: ['get', 'list', 'watch']}]},
      {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: proxyName, namespace: release.namespace, labels}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: proxyName}, subjects: [{kind: 'ServiceAccount', name: proxyName, namespace: release.namespace}]},
    )
  }
  return objects
}
