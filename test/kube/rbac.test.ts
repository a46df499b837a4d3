/**
 * `canary render --rbac` grants exactly what canary uses: for each router the whole lifecycle
 * (run to promotion, start + abort, status, down) passes with the fake API server enforcing only
 * the rendered Role, and every verb the Role grants was used. So the Role is sufficient and minimal.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {createKubernetesPorts} from '../../src/targets/kubernetes/adapters.js'
import {buildRbac, rbacRules} from '../../src/targets/kubernetes/rbac.js'
import {planFromRelease} from '../../src/rollout/plan-from-release.js'
import {abortRollout, rolloutStatus, runRollout, startRollout, type RolloutSession} from '../../src/rollout/services.js'
import type {Release} from '../../src/release/release.js'
import {FakeMetrics, ManualClock} from '../helpers/rollout/fakes.js'
import {steadyTraffic} from '../rollout/builders.js'
import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {seedProxyServiceAccount, testRelease} from './release-fixture.js'

let fake: FakeApiServer
let metricsServer: http.Server | undefined
const signal = new AbortController().signal

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
})

afterEach(async () => {
  metricsServer?.close()
  metricsServer = undefined
  await fake.close()
})

/** A proxy pod whose counters grow by 1000 stable / 200 canary requests per scrape. */
async function startProxyPod(): Promise<void> {
  let scrapes = 0
  metricsServer = http.createServer((_req, res) => {
    scrapes += 1
    res.end([
      `canary_proxy_requests_total{route="web",service="web",version="stable",code="200"} ${scrapes * 1000}`,
      `canary_proxy_requests_total{route="web",service="web",version="canary",code="200"} ${scrapes * 200}`,
      `canary_proxy_request_duration_seconds_bucket{route="web",service="web",version="stable",le="0.1"} ${scrapes * 1000}`,
      `canary_proxy_request_duration_seconds_bucket{route="web",service="web",version="stable",le="+Inf"} ${scrapes * 1000}`,
      `canary_proxy_request_duration_seconds_bucket{route="web",service="web",version="canary",le="0.1"} ${scrapes * 200}`,
      `canary_proxy_request_duration_seconds_bucket{route="web",service="web",version="canary",le="+Inf"} ${scrapes * 200}`,
      '',
    ].join('\n'))
  })
  await new Promise<void>((resolve) => metricsServer?.listen(0, '127.0.0.1', resolve))
  fake.seed({apiVersion: 'v1', kind: 'Pod', metadata: {name: 'web-proxy-1', namespace: 'shop', labels: {app: 'web-proxy'}}, spec: {containers: [{name: 'proxy', image: 'canary:1'}]}})
  fake.setStatus('v1', 'Pod', 'shop', 'web-proxy-1', {phase: 'Running'})
  fake.setPodProxy('shop', 'web-proxy-1', 9901, `http://127.0.0.1:${(metricsServer?.address() as AddressInfo).port}`)
}

async function session(release: Release, realMetrics: boolean): Promise<RolloutSession> {
  const ports = await createKubernetesPorts({release, specFile: 'release.yaml', kube: {kubeconfig: fake.kubeconfigPath}, clock: new ManualClock(1_700_000_000_000)})
  return {name: release.name, plan: planFromRelease(release), specImage: release.image.ref, ports: realMetrics ? ports : {...ports, metrics: new FakeMetrics(steadyTraffic(0))}, clock: new ManualClock(1_700_000_000_000)}
}

const cases = [
  {name: 'nginx', release: () => testRelease({router: 'nginx', match: true})},
  {name: 'traefik', release: () => testRelease({router: 'traefik', match: true})},
  {name: 'traefik with mirroring', release: () => testRelease({router: 'traefik', mirror: true})},
  {name: 'traefik-v1', release: () => testRelease({router: 'traefik-v1'})},
  {name: 'gateway-api', release: () => testRelease({router: 'gateway-api', match: true})},
  {name: 'proxy (metrics scraped through pods/proxy)', release: () => testRelease({router: 'proxy', match: true})},
]

describe('rendered RBAC', () => {
  for (const c of cases) {
    it(`${c.name}: the Role is enough for the whole lifecycle, and every verb it grants is used`, async () => {
      const release = c.release()
      const proxy = release.ingress?.router === 'proxy'
      if (proxy) {
        seedProxyServiceAccount(fake)
        await startProxyPod()
      }
      fake.allowRules = rbacRules(release)
      const s = await session(release, proxy)
      expect((await runRollout(s, {canaryImage: 'ghcr.io/acme/web:v2', signal})).outcome).toBe('promoted')
      await startRollout(s, {canaryImage: 'ghcr.io/acme/web:v3', signal})
      await rolloutStatus(s, {signal})
      await abortRollout(s, {signal})
      await s.ports.down(signal)
      expect(fake.requests.filter((r) => r.status === 403)).toEqual([])
      const used = new Set(fake.requests.filter((r) => r.resource !== undefined && r.status < 400).flatMap((r) => {
        const group = r.path.startsWith('/apis/') ? (r.path.split('/')[2] ?? '') : ''
        const pairs = [`${group}|${r.resource}|${r.verb}`]
        if (r.verb === 'patch' && r.status === 201) pairs.push(`${group}|${r.resource}|create`)
        return pairs
      }))
      const granted = new Set(rbacRules(release).flatMap((rule) => rule.apiGroups.flatMap((g) => rule.resources.flatMap((res) => rule.verbs.map((v) => `${g}|${res}|${v}`)))))
      expect([...granted].filter((g) => !used.has(g))).toEqual([])
    })
  }

  it('renders a ServiceAccount, a Role and a RoleBinding the API server accepts', async () => {
    const {connectKube} = await import('../../src/kube/client.js')
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    const objects = buildRbac(testRelease({router: 'proxy'}))
    expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding', 'ServiceAccount', 'Role', 'RoleBinding'])
    for (const object of objects) await client.create(object, signal)
    expect(fake.get('rbac.authorization.k8s.io/v1', 'RoleBinding', 'shop', 'canary-web')?.subjects).toEqual([{kind: 'ServiceAccount', name: 'canary', namespace: 'shop'}])
  })
})
