/**
 * Gateway API (`spec.ingress.router: gateway-api`): one HTTPRoute with weighted backendRefs
 * (objects.ts), driven on a cluster by kube-router.ts. No built-in queries: Gateway API metrics
 * are implementation-specific, so the spec gives its own PromQL.
 */
import type {RouterDefinition} from '../router-definition.js'
import {GatewayApiRouter} from './kube-router.js'
import {buildHttpRoute} from './objects.js'

export const GATEWAY_API = {
  kind: 'gateway-api',
  // HTTPRoute sessionPersistence is experimental-channel only (Gateway API v1.6).
  limits: {sticky: 'Gateway API has no standard-channel session persistence (sessionPersistence is experimental)'},
  requiredIngressField: {field: 'gateway', expected: '{name, namespace?, sectionName?}', purpose: 'of the Gateway the HTTPRoute attaches to'},
  starterIngressLines: ['    gateway: { name: my-gateway, namespace: default }   # the Gateway the HTTPRoute attaches to'],
  validate: () => [],
  build: buildHttpRoute,
  rbac: {rules: () => [{apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'create', 'patch']}]},
  kubeRouter: (client, release) => new GatewayApiRouter(client, release),
} as const satisfies RouterDefinition
