/**
 * The least privilege canary needs in a release's namespace: a ServiceAccount, a Role and a
 * RoleBinding. The rules are derived from the calls canary makes (callers of src/kube/client.ts):
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
 * Only the resources of the release's router are granted (its definition's `rbac`, src/routers/<kind>/index.ts). `list`/`watch` on ConfigMaps go to the
 * proxy's own ServiceAccount (it follows its routing ConfigMap), never to the CLI's.
 *
 * The proxy's ServiceAccount, Role and RoleBinding are emitted here, for an administrator to apply
 * once, and not applied by `canary start`: creating a RoleBinding needs rights on `roles` and
 * `rolebindings` plus every permission it grants (Kubernetes' escalation check), which a
 * least-privilege CI account should not have.
 */
import {MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASE_LABEL, type KubeObject} from '../../kube/objects.js'
import type {Release} from '../../release/release.js'
import {routerDefinition} from '../../routers/index.js'
import type {PolicyRule} from '../../routers/router-definition.js'

export type {PolicyRule} from '../../routers/router-definition.js'

/** The Role rules canary needs for `release`: the workloads and state, then the objects its router writes, and nothing else. */
export function rbacRules(release: Release): PolicyRule[] {
  const router = routerDefinition(release).rbac
  return [
    {apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch', 'delete']},
    {apiGroups: [''], resources: ['services'], verbs: ['get', 'create', 'patch', 'delete']},
    // State: created, then replaced under a resourceVersion precondition; a router's own ConfigMap: applied.
    {apiGroups: [''], resources: ['configmaps'], verbs: router.appliesConfigMap === true ? ['get', 'create', 'update', 'patch', 'delete'] : ['get', 'create', 'update', 'delete']},
    ...router.rules(release),
  ]
}

/** ServiceAccount, Role and RoleBinding for running canary against `release` (e.g. from CI), plus what the router's data plane needs. */
export function buildRbac(release: Release, serviceAccount = 'canary'): KubeObject[] {
  const labels = {[MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [RELEASE_LABEL]: release.name}
  const roleName = `canary-${release.name}`
  return [
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: serviceAccount, namespace: release.namespace, labels}},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: roleName, namespace: release.namespace, labels}, rules: rbacRules(release).map((r) => ({apiGroups: [...r.apiGroups], resources: [...r.resources], ...(r.resourceNames === undefined ? {} : {resourceNames: [...r.resourceNames]}), verbs: [...r.verbs]}))},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: roleName, namespace: release.namespace, labels}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName}, subjects: [{kind: 'ServiceAccount', name: serviceAccount, namespace: release.namespace}]},
    ...(routerDefinition(release).rbac.dataPlaneObjects?.(release, labels) ?? []),
  ]
}
