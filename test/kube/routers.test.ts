/** Every Kubernetes router passes the one contract on the fake API server (the cluster suite runs it on the real one); plus each router's own reading rules. */
import {describe, expect, it} from 'vitest'

import {parseHttpRouteWeights} from '../../src/routers/gateway-api/kube-router.js'
import {parseProxyWeights} from '../../src/routers/proxy/kube-router.js'
import {parseNginxWeights} from '../../src/routers/nginx/kube-router.js'
import {parseServiceWeights} from '../../src/routers/traefik-v1/kube-router.js'
import {ROUTER_SETUPS} from './router-setups.js'
import {trafficRouterContract} from './traffic-router.contract.js'

for (const setup of ROUTER_SETUPS) trafficRouterContract(setup)

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
