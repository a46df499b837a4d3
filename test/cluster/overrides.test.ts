/**
 * Header and cookie overrides and sticky sessions routed by real Traefik as docs/spec.md says
 * (header → cookie → weight), for each router whose Traefik provider serves them: traefik
 * (CRD provider), nginx (ingress-nginx provider, canary-by-header / canary-by-cookie) and
 * gateway-api (HTTPRoute header matches; the cookie is a regex on `Cookie`). Sticky sessions:
 * traefik and nginx (Gateway `sessionPersistence` is ignored by Traefik; checked at the API level only).
 */
import {describe, expect, it} from 'vitest'

import {getThrough} from '../../scripts/cluster/pods.js'
import {aClusterRelease, cluster, kubectlGet, measuredSplit, sample, serve} from './fixture.js'

const routers = [
  {router: 'traefik', sticky: true},
  {router: 'nginx', sticky: true},
  {router: 'gateway-api', sticky: false},
]

// Concurrently: each test has its own namespace, host and pods.
describe.concurrent.each(routers)('overrides through Traefik, router $router', ({router, sticky}) => {
  it('header, then cookie, then weight; sticky clients stay on their version', async ({onTestFinished}) => {
    const r = await aClusterRelease(router, {extraSpec: ['  match: {header: {name: X-Canary}, cookie: canary}', ...(sticky ? ['  sticky: {cookie: shop-version}'] : [])]})
    onTestFinished(() => r.dispose())
    await serve(r, 'web', 'v1')
    await serve(r, 'web-canary', 'v2')
    const start = await r.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, `${start.stdout}${start.stderr}`).toBe(0)
    await measuredSplit(cluster.traefikUrl, {host: r.host}, 10, 100)

    const only = async (headers: Record<string, string>) => (await sample(cluster.traefikUrl, {host: r.host, ...headers}, 100)).versions
    expect(await only({'x-canary': 'always'})).toEqual({v2: 100})
    expect(await only({'x-canary': 'never'})).toEqual({v1: 100})
    expect(await only({cookie: 'canary=always'})).toEqual({v2: 100})
    expect(await only({cookie: 'canary=never'})).toEqual({v1: 100})
    // The header outranks the cookie.
    expect(await only({'x-canary': 'never', cookie: 'canary=always'})).toEqual({v1: 100})
    // Values the override does not know fall through to the weights.
    const fallThrough = await only({'x-canary': 'maybe'})
    expect((fallThrough.v1 ?? 0) + (fallThrough.v2 ?? 0)).toBe(100)
    expect(fallThrough.v1).toBeGreaterThan(80)

    if (sticky) {
      // Twenty new clients: each gets a cookie naming its version, and stays there for ten more requests.
      const seen: Record<string, number> = {}
      for (let client = 0; client < 20; client++) {
        const first = await getThrough(cluster.traefikUrl, {host: r.host})
        // A browser returns every cookie: Traefik's ingress-nginx provider pins the version with a
        // second cookie `<name>-wrr` (ingress-nginx itself uses the one cookie).
        const cookies = [first.headers['set-cookie'] ?? []].flat().map((c) => c.split(';')[0]!)
        expect(cookies.some((c) => c.startsWith('shop-version=')), JSON.stringify(first.headers)).toBe(true)
        const version = String(first.headers['x-version'])
        seen[version] = (seen[version] ?? 0) + 1
        const again = await sample(cluster.traefikUrl, {host: r.host, cookie: cookies.join('; ')}, 10)
        expect(again.versions).toEqual({[version]: 10})
      }
      expect(seen.v1).toBeGreaterThan(0)
    } else {
      // Traefik's Gateway provider does not read sessionPersistence: what canary wrote is checked at the API level only.
      expect(kubectlGet(r.namespace, 'httproutes.gateway.networking.k8s.io', 'web')).toBeDefined()
    }
  })
})
