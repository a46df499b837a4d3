/** Scraping the in-cluster proxy's /metrics through the API server's pod proxy, summed across replicas. */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {UnreachableError} from '../../src/errors.js'
import {connectKube} from '../../src/kube/client.js'
import {ForbiddenError} from '../../src/kube/errors.js'
import {countersFromExposition, KubeProxyScrapeSource} from '../../src/routers/proxy/kube-metrics.js'
import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {testRelease} from './release-fixture.js'

const signal = new AbortController().signal

/** One proxy pod's exposition, in the names src/proxy/metrics.ts uses. */
function exposition(c: {stable: number; canary: number; canary5xx: number; canaryFast: number}): string {
  return [
    '# HELP canary_proxy_requests_total Requests answered.',
    '# TYPE canary_proxy_requests_total counter',
    `canary_proxy_requests_total{route="web",service="web",version="stable",code="200"} ${c.stable}`,
    `canary_proxy_requests_total{route="web",service="web",version="canary",code="200"} ${c.canary - c.canary5xx}`,
    `canary_proxy_requests_total{route="web",service="web",version="canary",code="503"} ${c.canary5xx}`,
    `canary_proxy_requests_total{route="other",service="other",version="canary",code="200"} 1000`,
    `canary_proxy_request_duration_seconds_bucket{route="web",service="web",version="canary",le="0.1"} ${c.canaryFast}`,
    `canary_proxy_request_duration_seconds_bucket{route="web",service="web",version="canary",le="+Inf"} ${c.canary}`,
    '',
  ].join('\n')
}

let fake: FakeApiServer
const pods: Array<{server: http.Server; text: string}> = []

async function startPod(name: string): Promise<{text: string}> {
  const pod = {server: http.createServer((req, res) => res.end(req.url === '/metrics' ? pod.text : '')), text: ''}
  await new Promise<void>((resolve) => pod.server.listen(0, '127.0.0.1', resolve))
  pods.push(pod)
  fake.seed({apiVersion: 'v1', kind: 'Pod', metadata: {name, namespace: 'shop', labels: {app: 'web-proxy'}}, spec: {containers: [{name: 'proxy', image: 'canary:1'}]}})
  fake.setStatus('v1', 'Pod', 'shop', name, {phase: 'Running'})
  fake.setPodProxy('shop', name, 9901, `http://127.0.0.1:${(pod.server.address() as AddressInfo).port}`)
  return pod
}

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
})

afterEach(async () => {
  for (const pod of pods.splice(0)) pod.server.close()
  await fake.close()
})

describe('KubeProxyScrapeSource', () => {
  it('sums both replicas and reports the window as the difference between scrapes', async () => {
    const a = await startPod('web-proxy-a')
    const b = await startPod('web-proxy-b')
    a.text = exposition({stable: 100, canary: 10, canary5xx: 0, canaryFast: 10})
    b.text = exposition({stable: 50, canary: 5, canary5xx: 1, canaryFast: 5})
    const source = new KubeProxyScrapeSource(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease({router: 'proxy'}))
    const first = await source.read({sinceMs: 0, untilMs: 1000}, signal)
    expect(first.canary.requests).toBe(0)
    a.text = exposition({stable: 190, canary: 20, canary5xx: 2, canaryFast: 18})
    b.text = exposition({stable: 80, canary: 15, canary5xx: 3, canaryFast: 13})
    const second = await source.read({sinceMs: 1000, untilMs: 2000}, signal)
    expect(second.stable.requests).toBe(90 + 30)
    expect(second.canary).toEqual({requests: 10 + 10, errors: 2 + 2, latency: [{leSeconds: 0.1, count: 8 + 8}, {leSeconds: Infinity, count: 20}]})
    expect(fake.requests.filter((r) => r.path.endsWith('/proxy/metrics'))).toHaveLength(4)
  })

  it('keeps the step window\'s start while a recent window slides forward, and forgets the scrapes in between', async () => {
    const a = await startPod('web-proxy-a')
    let canary = 0
    a.text = exposition({stable: 0, canary: 0, canary5xx: 0, canaryFast: 0})
    const source = new KubeProxyScrapeSource(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease({router: 'proxy'}))
    await source.read({sinceMs: 0, untilMs: 1000}, signal)
    // 10 canary requests per second; the engine reads the step's window every tick and the last
    // 30 s at looks (every 10 s here).
    for (let t = 2; t <= 120; t++) {
      canary += 10
      a.text = exposition({stable: 0, canary, canary5xx: 0, canaryFast: canary})
      const step = await source.read({sinceMs: 1000, untilMs: t * 1000}, signal)
      expect(step.canary.requests).toBe(canary)
      if (t % 10 === 0 && t > 31) {
        const recent = await source.read({sinceMs: (t - 30) * 1000, untilMs: t * 1000}, signal)
        expect(recent.sinceMs).toBe((t - 30) * 1000)
        expect(recent.canary.requests).toBe(300)
      }
    }
    expect((source as unknown as {scrapes: unknown[]}).scrapes.length).toBeLessThan(40)
  })

  it('a pod that restarted counts from zero, like increase()', async () => {
    const a = await startPod('web-proxy-a')
    a.text = exposition({stable: 100, canary: 10, canary5xx: 0, canaryFast: 10})
    const source = new KubeProxyScrapeSource(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease({router: 'proxy'}))
    await source.read({sinceMs: 0, untilMs: 1000}, signal)
    a.text = exposition({stable: 7, canary: 3, canary5xx: 0, canaryFast: 3})
    expect((await source.read({sinceMs: 1000, untilMs: 2000}, signal)).canary.requests).toBe(3)
  })

  it('no running proxy pod is UnreachableError (exit 6)', async () => {
    const source = new KubeProxyScrapeSource(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease({router: 'proxy'}))
    await expect(source.read({sinceMs: 0, untilMs: 1000}, signal)).rejects.toBeInstanceOf(UnreachableError)
  })

  it('parses only the release\'s service', () => {
    const counters = countersFromExposition(exposition({stable: 1, canary: 2, canary5xx: 1, canaryFast: 1}), 'web')
    expect(counters.canary.requests).toBe(2)
    expect(counters.canary.errors).toBe(1)
  })

  it('a denied pod proxy names pods/proxy, the permission to grant', async () => {
    await startPod('web-proxy-a')
    fake.denyRules.push({resource: 'pods/proxy'})
    const source = new KubeProxyScrapeSource(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease({router: 'proxy'}))
    const error = await source.read({sinceMs: 0, untilMs: 1000}, signal).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ForbiddenError)
    expect((error as ForbiddenError).resource).toBe('pods/proxy')
    expect((error as ForbiddenError).message).toContain('cannot get resource "pods/proxy"')
  })
})
