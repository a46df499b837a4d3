/**
 * canary's bundled proxy (`spec.ingress.router: proxy`, the default): locally it runs beside the
 * app (src/local/), on a cluster as a Deployment that follows its routing ConfigMap (objects.ts,
 * config-sync.ts), driven by kube-router.ts. It can do everything the spec can say.
 */
import {names} from '../../render/names.js'
import {counterAndHistogramQueries, escapeLabel, type RouterDefinition} from '../router-definition.js'
import {KubeProxyScrapeSource} from './kube-metrics.js'
import {KubeProxyRouter} from './kube-router.js'
import {buildProxy} from './objects.js'

export const PROXY = {
  kind: 'proxy',
  limits: {},
  validate: () => [],
  build: buildProxy,
  rbac: {
    appliesConfigMap: true,
    rules: (release) => [
      // The proxy pods' ServiceAccount must exist (checked); their admin token: read when present, created when absent.
      {apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [names(release).proxy], verbs: ['get']},
      {apiGroups: [''], resources: ['secrets'], resourceNames: [names(release).proxyAdminSecret], verbs: ['get']},
      {apiGroups: [''], resources: ['secrets'], verbs: ['create']},
      // Without Prometheus the CLI reads the proxy pods' /metrics itself (kube-metrics.ts).
      ...(release.analysis.prometheus === undefined ? [{apiGroups: [''], resources: ['pods'], verbs: ['list']}, {apiGroups: [''], resources: ['pods/proxy'], verbs: ['get']}] : []),
    ],
    dataPlaneObjects: (release, labels) => {
      // The in-cluster proxy reads (and watches) its own routing ConfigMap and nothing else.
      const proxyName = names(release).proxy
      return [
        {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: proxyName, namespace: release.namespace, labels}},
        {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: proxyName, namespace: release.namespace, labels}, rules: [{apiGroups: [''], resources: ['configmaps'], resourceNames: [names(release).proxyConfig], verbs: ['get', 'list', 'watch']}]},
        {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: proxyName, namespace: release.namespace, labels}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: proxyName}, subjects: [{kind: 'ServiceAccount', name: proxyName, namespace: release.namespace}]},
      ]
    },
  },
  kubeRouter: (client, release) => new KubeProxyRouter(client, release),
  kubeMetrics: (client, release) => new KubeProxyScrapeSource(client, release),
  builtInQueries: (context) => {
    // canary's own proxy (src/proxy/metrics.ts): one series per route, service, version and code.
    const selector = `service="${escapeLabel(context.name)}",version="${context.track}"`
    return counterAndHistogramQueries({requests: 'canary_proxy_requests_total', statusLabel: 'code', buckets: 'canary_proxy_request_duration_seconds_bucket'}, selector, context.interval)
  },
} as const satisfies RouterDefinition
