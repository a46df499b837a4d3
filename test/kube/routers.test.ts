/** Every Kubernetes router passes the one contract; plus each router's own reading rules. */
import {describe, expect, it} from 'vitest'

import {GatewayApiRouter, parseHttpRouteWeights} from '../../src/rollout/routers/gateway-api-router.js'
import {KubeProxyRouter, parseProxyWeights} from '../../src/rollout/routers/kube-proxy-router.js'
import {NginxIngressRouter, parseNginxWeights} from '../../src/rollout/routers/nginx-ingress-router.js'
import {TraefikCrdRouter} from '../../src/rollout/routers/traefik-crd-router.js'
import {parseServiceWeights, TraefikV1Router} from '../../src/rollout/routers/traefik-v1-router.js'
import {seedProxyServiceAccount, testRelease} from './release-fixture.js'
import {trafficRouterContract} from './traffic-router.contract.js'

const ingress = (name: string) => ({apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: {name, namespace: 'shop'}, spec: {rules: [{host: 'user.example.com', http: {paths: [{path: '/', pathType: 'Prefix', backend: {service: {name: 'user', port: {number: 80}}}}]}}]}})

trafficRouterContract({
  name: 'ingress-nginx',
  release: (totalWeight) => testRelease({router: 'nginx', match: true, totalWeight}),
  create: (client, release) => new NginxIngressRouter(client, release),
  weightsObject: {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'web-canary'},
  userObject: ingress,
  resource: 'ingresses',
})

for (const group of ['traefik.io', 'traefik.containo.us'] as const) {
  trafficRouterContract({
    name: `Traefik CRD (${group})`,
    release: (totalWeight) => testRelease({router: 'traefik', traefikApiGroup: group, match: true, totalWeight}),
    create: (client, release) => new TraefikCrdRouter(client, release),
    weightsObject: {apiVersion: `${group}/v1alpha1`, kind: 'TraefikService', name: 'web'},
    userObject: (name) => ({apiVersion: `${group}/v1alpha1`, kind: 'TraefikService', metadata: {name, namespace: 'shop'}, spec: {weighted: {services: [{name: 'user', port: 80, weight: 1}]}}}),
    resource: 'traefikservices',
  })
}

trafficRouterContract({
  name: 'Traefik CRD with mirroring',
  release: (totalWeight) => testRelease({router: 'traefik', mirror: true, totalWeight}),
  create: (client, release) => new TraefikCrdRouter(client, release),
  weightsObject: {apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', name: 'web-weighted'},
  userObject: (name) => ({apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: {name, namespace: 'shop'}, spec: {weighted: {services: [{name: 'user', port: 80, weight: 1}]}}}),
  resource: 'traefikservices',
})

trafficRouterContract({
  name: 'Traefik 1.x',
  release: (totalWeight) => testRelease({router: 'traefik-v1', totalWeight}),
  create: (client, release) => new TraefikV1Router(client, release),
  weightsObject: {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'web'},
  userObject: ingress,
  resource: 'ingresses',
})

trafficRouterContract({
  name: 'Gateway API',
  release: (totalWeight) => testRelease({router: 'gateway-api', match: true, totalWeight}),
  create: (client, release) => new GatewayApiRouter(client, release),
  weightsObject: {apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', name: 'web'},
  userObject: (name) => ({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: {name, namespace: 'shop'}, spec: {rules: [{backendRefs: [{name: 'user', port: 80}]}]}}),
  resource: 'httproutes',
})

trafficRouterContract({
  name: 'bundled proxy in the cluster',
  release: (totalWeight) => testRelease({router: 'proxy', match: true, totalWeight}),
  create: (client, release) => new KubeProxyRouter(client, release),
  weightsObject: {apiVersion: 'v1', kind: 'ConfigMap', name: 'web-proxy-config'},
  userObject: (name) => ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name, namespace: 'shop'}, data: {a: 'b'}}),
  resource: 'configmaps',
  cluster: seedProxyServiceAccount,
})

describe('reading weights back', () => {
  it('ingress-nginx: canary-weight-total counts only above 100 (balancer.lua), weight is clamped', () => {
    expect(parseNginxWeights({'nginx.ingress.kubernetes.io/canary-weight': '5'})).toEqual({canary: 5, total: 100})
    expect(parseNginxWeights({'nginx.ingress.kubernetes.io/canary-weight': '5', 'nginx.ingress.kubernetes.io/canary-weight-total': '1000'})).toEqual({canary: 5, total: 1000})
    expect(parseNginxWeights({'nginx.ingress.kubernetes.io/canary-weight': '5', 'nginx.ingress.kubernetes.io/canary-weight-total': '50'})).toEqual({canary: 5, total: 100})
    expect(parseNginxWeights({'nginx.ingress.kubernetes.io/canary-weight': '500'})).toEqual({canary: 100, total: 100})
    expect(parseNginxWeights({})).toEqual({canary: 0, total: 100})
  })

  it('Traefik 1.x: an omitted backend gets the remainder of 100 %', () => {
    expect(parseServiceWeights('web-canary: 12.5%\n', 'web-canary', 'web', 1000)).toEqual({canary: 125, total: 1000})
    expect(parseServiceWeights('web: 75%\n', 'web-canary', 'web', 100)).toEqual({canary: 25, total: 100})
    expect(parseServiceWeights('web-canary: 33.333%', 'web-canary', 'web', 100)).toEqual({canary: 33333, total: 100000})
    expect(parseServiceWeights(undefined, 'web-canary', 'web', 100)).toEqual({canary: 0, total: 100})
  })

  it('Gateway API: weights are proportional and default to 1; header rules are not the weighted rule', () => {
    const rules = [
      {matches: [{headers: [{name: 'X-Canary', value: 'always'}]}], backendRefs: [{name: 'web-canary'}]},
      {matches: [{}], backendRefs: [{name: 'web', weight: 3}, {name: 'web-canary'}]},
    ]
    expect(parseHttpRouteWeights(rules, 'web', 'web-canary', 100)).toEqual({canary: 1, total: 4})
  })

  it('bundled proxy: the canary version weight out of the service total', () => {
    expect(parseProxyWeights('services:\n  web:\n    versions:\n      - {name: stable, weight: 90}\n      - {name: canary, weight: 10}\n', 'web', 100)).toEqual({canary: 10, total: 100})
  })
})
