// The seed articles' examples (../shared/seeds) as test cases: what they configured by hand,
// canary must render from a spec.
import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {weights} from '../../src/rollout/core/weights.js'
import {buildNginxIngress} from '../../src/routers/nginx/objects.js'
import {buildTraefikCrd} from '../../src/routers/traefik/objects.js'
import {buildTraefikFileConfig} from '../../src/routers/traefik-file/objects.js'
import {buildTraefikV1Ingress} from '../../src/routers/traefik-v1/objects.js'
import {parseRelease} from '../../src/release/load-release.js'

function release(name: string, spec: string, namespace = 'default') {
  return parseRelease(`apiVersion: canary.dev/v1alpha1\nkind: Release\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec}`, 'seed.yaml').release
}

describe('seed 000/001: Traefik 1.x service-weights', () => {
  it('renders my-app / my-app-canary on the same path with the canary at 20 %', () => {
    const r = release('my-app', '  image: nginx:1\n  port: 80\n  ingress: {host: my-app.example.com, router: traefik-v1}\n  steps: [20, 100]\n')
    const [ingress] = buildTraefikV1Ingress(r, {stableImage: 'nginx:1', canaryImage: 'nginx:2', weights: weights(20)}) as unknown as Array<{metadata: {annotations: Record<string, string>}; spec: {rules: Array<{http: {paths: Array<{path: string; backend: {service: {name: string}}}>}}>}}>
    expect(parse(ingress!.metadata.annotations['traefik.ingress.kubernetes.io/service-weights']!)).toEqual({'my-app-canary': '20%'})
    expect(ingress!.spec.rules[0]!.http.paths.map((p) => `${p.path} ${p.backend.service.name}`)).toEqual(['/ my-app', '/ my-app-canary'])
  })
})

describe('seed 002: ingress-nginx canary-by-header with a value', () => {
  it('renders canary-by-header: cortex and canary-by-header-value: all, weight 50', () => {
    const r = release('web', '  image: nginx:1\n  port: 80\n  ingress: {host: web.example.com, router: nginx}\n  steps: [50, 100]\n  match: {header: {name: cortex, value: all}}\n')
    const [, canary] = buildNginxIngress(r, {stableImage: 'nginx:1', canaryImage: 'nginx:2', weights: weights(50)})
    expect(canary!.metadata.annotations).toEqual({
      'nginx.ingress.kubernetes.io/canary': 'true',
      'nginx.ingress.kubernetes.io/canary-by-header': 'cortex',
      'nginx.ingress.kubernetes.io/canary-by-header-value': 'all',
      'nginx.ingress.kubernetes.io/canary-weight': '50',
    })
  })
})

describe('seed 003: Traefik file provider, 3/4 to appv1 and 1/4 to appv2', () => {
  it('renders a router on the host and a weighted service over two load balancers', () => {
    const r = release('app', '  image: nginx:1\n  port: 80\n  ingress: {host: nginx.qikqiak.com, router: traefik-file}\n  steps: [25, 100]\n', 'kube-system')
    const config = buildTraefikFileConfig(r, {stableImage: 'nginx:1', canaryImage: 'nginx:2', weights: weights(25)})
    expect(config.http.routers['kube-system-app']).toEqual({rule: 'Host(`nginx.qikqiak.com`) && PathPrefix(`/`)', priority: 100, service: 'kube-system-app'})
    expect(config.http.services['kube-system-app']).toEqual({weighted: {services: [{name: 'kube-system-app-stable', weight: 75}, {name: 'kube-system-app-canary', weight: 25}]}})
    expect(config.http.services['kube-system-app-canary']).toEqual({loadBalancer: {servers: [{url: 'http://app-canary.kube-system.svc.cluster.local:80'}]}})
  })
})

describe('seed 004: TraefikService weighted, sticky and mirroring (traefik.containo.us)', () => {
  const spec = '  image: nginx:1\n  port: 80\n  ingress: {host: traefikservice.kubesre.lc, router: traefik, traefikApiGroup: traefik.containo.us}\n  steps: [1, 3]\n  totalWeight: 3\n'
  it('splits 1:2 with integer weights', () => {
    const [service] = buildTraefikCrd(release('app', spec), {stableImage: 'nginx:1', canaryImage: 'nginx:2', weights: weights(2, 3)})
    expect(service).toMatchObject({apiVersion: 'traefik.containo.us/v1alpha1', kind: 'TraefikService', spec: {weighted: {services: [{name: 'app', port: 80, weight: 1}, {name: 'app-canary', port: 80, weight: 2}]}}})
  })
  it('adds a sticky cookie, and mirrors 10 % to the canary through a wrapping TraefikService', () => {
    const r = release('app', `${spec}  sticky: {cookie: cookie}\n  mirror: {percent: 10}\n`)
    const [mirroring, weighted] = buildTraefikCrd(r, {stableImage: 'nginx:1', canaryImage: 'nginx:2', weights: weights(1, 3)})
    expect(mirroring).toMatchObject({metadata: {name: 'app'}, spec: {mirroring: {name: 'app-weighted', kind: 'TraefikService', mirrors: [{name: 'app-canary', port: 80, percent: 10}]}}})
    expect(weighted).toMatchObject({metadata: {name: 'app-weighted'}, spec: {weighted: {sticky: {cookie: {name: 'cookie'}}}}})
  })
})
