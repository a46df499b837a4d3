/** The router setups the TrafficRouter contract runs: the fast suite on the fake API server, the cluster suite on the real one. */
import {GatewayApiRouter} from '../../src/routers/gateway-api/kube-router.js'
import {KubeProxyRouter} from '../../src/routers/proxy/kube-router.js'
import {NginxIngressRouter} from '../../src/routers/nginx/kube-router.js'
import {TraefikCrdRouter} from '../../src/routers/traefik/kube-router.js'
import {TraefikV1Router} from '../../src/routers/traefik-v1/kube-router.js'
import {seedProxyServiceAccount, testRelease} from './release-fixture.js'
import type {RouterContractSetup} from './traffic-router.contract.js'

const ingress = (name: string) => ({apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: {name, namespace: 'shop'}, spec: {rules: [{host: 'user.example.com', http: {paths: [{path: '/', pathType: 'Prefix', backend: {service: {name: 'user', port: {number: 80}}}}]}}]}})

/** Every Kubernetes router, as the contract builds it. */
export const ROUTER_SETUPS: RouterContractSetup[] = []

ROUTER_SETUPS.push({
  name: 'ingress-nginx',
  release: (totalWeight) => testRelease({router: 'nginx', match: true, totalWeight}),
  create: (client, release) => new NginxIngressRouter(client, release),
  weightsObject: {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'web-canary'},
  userObject: ingress,
  resource: 'ingresses',
})

for (const group of ['traefik.io', 'traefik.containo.us'] as const) {
  ROUTER_SETUPS.push({
    name: `Traefik CRD (${group})`,
    release: (totalWeight) => testRelease({router: 'traefik', traefikApiGroup: group, match: true, totalWeight}),
    create: (client, release) => new TraefikCrdRouter(client, release),
    weightsObject: {apiVersion: `${group}/v1alpha1`, kind: 'TraefikService', name: 'web'},
    userObject: (name) => ({apiVersion: `${group}/v1alpha1`, kind: 'TraefikService', metadata: {name, namespace: 'shop'}, spec: {weighted: {services: [{name: 'user', port: 80, weight: 1}]}}}),
    resource: 'traefikservices',
  })
}

ROUTER_SETUPS.push({
  name: 'Traefik CRD with mirroring',
  release: (totalWeight) => testRelease({router: 'traefik', mirror: true, totalWeight}),
  create: (client, release) => new TraefikCrdRouter(client, release),
  weightsObject: {apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', name: 'web-weighted'},
  userObject: (name) => ({apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: {name, namespace: 'shop'}, spec: {weighted: {services: [{name: 'user', port: 80, weight: 1}]}}}),
  resource: 'traefikservices',
})

ROUTER_SETUPS.push({
  name: 'Traefik 1.x',
  release: (totalWeight) => testRelease({router: 'traefik-v1', totalWeight}),
  create: (client, release) => new TraefikV1Router(client, release),
  weightsObject: {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'web'},
  userObject: ingress,
  resource: 'ingresses',
})

ROUTER_SETUPS.push({
  name: 'Gateway API',
  release: (totalWeight) => testRelease({router: 'gateway-api', match: true, totalWeight}),
  create: (client, release) => new GatewayApiRouter(client, release),
  weightsObject: {apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', name: 'web'},
  userObject: (name) => ({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: {name, namespace: 'shop'}, spec: {rules: [{backendRefs: [{name: 'user', port: 80}]}]}}),
  resource: 'httproutes',
})

ROUTER_SETUPS.push({
  name: 'bundled proxy in the cluster',
  release: (totalWeight) => testRelease({router: 'proxy', match: true, totalWeight}),
  create: (client, release) => new KubeProxyRouter(client, release),
  weightsObject: {apiVersion: 'v1', kind: 'ConfigMap', name: 'web-proxy-config'},
  userObject: (name) => ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name, namespace: 'shop'}, data: {a: 'b'}}),
  resource: 'configmaps',
  cluster: seedProxyServiceAccount,
})
