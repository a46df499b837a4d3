/**
 * Mirroring through real Traefik (router traefik, `spec.mirror`): canary renders a TraefikService
 * `mirroring` that wraps the weighted one (`web-weighted`); Traefik copies `percent` of the requests
 * to the canary's Service and throws the copies' answers away. Counted at the canary's backend:
 * it receives its weighted share plus the mirrored share, while clients see only the weighted
 * service's answers. At canary weight 0 that is all v1 for clients and exactly the mirrored share
 * at the canary. Traefik samples by counter (pkg/server/service/loadbalancer/mirror), so the
 * count is exact within one request per hundred like the split.
 */
import {describe, expect, it} from 'vitest'

import {aClusterRelease, cluster, kubectlGet, measuredSplit, sample, serve, servedCount, type ClusterRelease} from './fixture.js'

const MIRROR_PERCENT = 20

/** The two TraefikServices canary wrote, as kubectl reads them. */
function traefikServices(r: ClusterRelease): {mirroring: unknown; weighted: {name: string; weight: number}[] | undefined} {
  return {
    mirroring: kubectlGet(r.namespace, 'traefikservices.traefik.io', 'web')?.spec.mirroring,
    weighted: kubectlGet(r.namespace, 'traefikservices.traefik.io', 'web-weighted')?.spec.weighted.services,
  }
}

// Concurrently with the other files: its own namespace, host and pods.
describe.concurrent('mirroring through Traefik, router traefik', () => {
  it(`start → step to weight 0 → abort with spec.mirror ${MIRROR_PERCENT} %: the canary receives the mirrored share, clients only the weighted answers`, async ({onTestFinished}) => {
    const r = await aClusterRelease('traefik', {extraSpec: [`  mirror: {percent: ${MIRROR_PERCENT}}`]})
    onTestFinished(() => r.dispose())
    await serve(r, 'web', 'v1')
    const canary = await serve(r, 'web-canary', 'v2')
    const start = await r.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, `${start.stdout}${start.stderr}`).toBe(0)
    expect(traefikServices(r)).toEqual({
      mirroring: {name: 'web-weighted', kind: 'TraefikService', mirrors: [{name: 'web-canary', port: 8080, percent: MIRROR_PERCENT}]},
      weighted: [{name: 'web', port: 8080, weight: 90}, {name: 'web-canary', port: 8080, weight: 10}],
    })

    /** 1,000 requests through Traefik: what clients saw, and what reached the canary beyond its answers to clients. */
    const measure = async (canaryPercent: number) => {
      await measuredSplit(cluster.traefikUrl, {host: r.host}, canaryPercent, 100)
      const before = await servedCount(canary.pod)
      const seen = await sample(cluster.traefikUrl, {host: r.host}, 1000)
      // The copies go out after the client's answer: the count is read once the backend is quiet.
      const atCanary = (await servedCount(canary.pod)) - before
      return {seen, mirrored: atCanary - (seen.versions.v2 ?? 0)}
    }

    const at10 = await measure(10)
    expect(at10.seen.statuses).toEqual({200: 1000})
    expect(Math.abs((at10.seen.versions.v2 ?? 0) - 100), JSON.stringify(at10)).toBeLessThanOrEqual(10)
    expect((at10.seen.versions.v1 ?? 0) + (at10.seen.versions.v2 ?? 0)).toBe(1000)
    expect(Math.abs(at10.mirrored - MIRROR_PERCENT * 10), JSON.stringify(at10)).toBeLessThanOrEqual(10)

    // Weight 0 keeps the canary and its mirror: clients see only stable, the canary only the copies.
    const step = await r.canary(['step', '--weight', '0', '--json'])
    expect(step.code, `${step.stdout}${step.stderr}`).toBe(0)
    expect(traefikServices(r).weighted).toEqual([{name: 'web', port: 8080, weight: 100}, {name: 'web-canary', port: 8080, weight: 0}])
    const at0 = await measure(0)
    expect(at0.seen).toEqual({versions: {v1: 1000}, statuses: {200: 1000}})
    expect(Math.abs(at0.mirrored - MIRROR_PERCENT * 10), JSON.stringify(at0)).toBeLessThanOrEqual(10)

    // Abort: the mirroring object goes with the canary, and nothing reaches the canary's backend any more.
    const abort = await r.canary(['abort', '--json'])
    expect(abort.code, `${abort.stdout}${abort.stderr}`).toBe(0)
    expect(kubectlGet(r.namespace, 'traefikservices.traefik.io', 'web-weighted')).toBeUndefined()
    expect(kubectlGet(r.namespace, 'traefikservices.traefik.io', 'web')?.spec).toEqual({weighted: {services: [{name: 'web', port: 8080, weight: 100}]}})
    // All v1 already at weight 0: the data plane has taken the abort once 100 requests make no copy.
    const deadline = Date.now() + 30_000
    for (;;) {
      const before = await servedCount(canary.pod)
      await sample(cluster.traefikUrl, {host: r.host}, 100)
      if ((await servedCount(canary.pod)) === before) break
      if (Date.now() > deadline) throw new Error('Traefik still mirrors to the canary 30 s after abort')
    }
    const afterAbort = await measure(0)
    expect(afterAbort.seen).toEqual({versions: {v1: 1000}, statuses: {200: 1000}})
    expect(afterAbort.mirrored).toBe(0)
  })
})

describe.concurrent('mirroring, router gateway-api: at the API level only', () => {
  it(`start with spec.mirror ${MIRROR_PERCENT} %: the HTTPRoute's weighted rule carries a RequestMirror filter to the canary; Traefik answers that route with 500`, async ({onTestFinished}) => {
    const r = await aClusterRelease('gateway-api', {extraSpec: [`  mirror: {percent: ${MIRROR_PERCENT}}`]})
    onTestFinished(() => r.dispose())
    await serve(r, 'web', 'v1')
    await serve(r, 'web-canary', 'v2')
    const start = await r.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, `${start.stdout}${start.stderr}`).toBe(0)
    const rules = kubectlGet(r.namespace, 'httproutes.gateway.networking.k8s.io', 'web')?.spec.rules as {backendRefs: {name: string; weight?: number}[]; filters?: unknown[]}[]
    const weighted = rules.at(-1)!
    expect(weighted.filters).toEqual([{type: 'RequestMirror', requestMirror: {backendRef: {group: '', kind: 'Service', name: 'web-canary', port: 8080}, percent: MIRROR_PERCENT}}])
    expect(weighted.backendRefs.map((b) => [b.name, b.weight])).toEqual([['web', 90], ['web-canary', 10]])
    // Traefik 3.7.13 serves such a route with 500 (docs/kubernetes.md): when an upgrade serves it,
    // this fails, and mirroring through the Gateway provider can be measured like the TraefikService's.
    const deadline = Date.now() + 30_000
    let seen = await sample(cluster.traefikUrl, {host: r.host}, 100)
    while (seen.statuses[404] !== undefined && Date.now() < deadline) seen = await sample(cluster.traefikUrl, {host: r.host}, 100)
    expect(seen.statuses, JSON.stringify(seen)).toEqual({500: 100})
  })
})
