/**
 * What each command asks of the API server, from the fake API server's request log: no write when
 * nothing changes, each object read at most once per command, and no discovery for the kinds canary
 * writes. The real server's audit log says the same in test/cluster/api-requests.test.ts.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {createKubernetesPorts} from '../../src/targets/kubernetes/adapters.js'
import {planFromRelease} from '../../src/rollout/plan-from-release.js'
import {rolloutStatus, startRollout, stepRollout, type RolloutSession} from '../../src/rollout/services.js'
import type {Release} from '../../src/release/release.js'
import {FakeMetrics, ManualClock} from '../helpers/rollout/fakes.js'
import {steadyTraffic} from '../rollout/builders.js'
import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {seedProxyServiceAccount, testRelease} from './release-fixture.js'

let fake: FakeApiServer
const signal = new AbortController().signal

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  seedProxyServiceAccount(fake)
})

afterEach(async () => {
  await fake.close()
})

async function session(release: Release): Promise<RolloutSession> {
  const clock = new ManualClock(1_700_000_000_000)
  const ports = await createKubernetesPorts({release, specFile: 'release.yaml', kube: {kubeconfig: fake.kubeconfigPath}, clock})
  return {name: release.name, plan: planFromRelease(release), specImage: release.image.ref, ports: {...ports, metrics: new FakeMetrics(steadyTraffic(0))}, clock}
}

/** The requests `action` sent: writes, and how often each path was read. */
async function requestsOf(action: () => Promise<unknown>) {
  const before = fake.requests.length
  await action()
  const sent = fake.requests.slice(before)
  const reads = new Map<string, number>()
  for (const r of sent.filter((r) => r.method === 'GET')) reads.set(r.path, (reads.get(r.path) ?? 0) + 1)
  return {all: sent, writes: sent.filter((r) => r.method !== 'GET').map((r) => `${r.verb} ${r.resource}/${r.name ?? ''}`), reads}
}

const STATE = '/api/v1/namespaces/shop/configmaps/web-canary-state'

/** Reads beyond the first of one object; the state ConfigMap is read by the command, then by the engine's tick. */
function repeatedReads(reads: ReadonlyMap<string, number>): string[] {
  return [...reads].filter(([path, count]) => count > (path === STATE ? 2 : 1)).map(([path, count]) => `${path} ×${count}`)
}

const ROUTERS = ['nginx', 'traefik', 'traefik-v1', 'gateway-api', 'proxy'] as const

describe('API requests per command', () => {
  for (const router of ROUTERS) {
    it(`${router}: a step to the weight in force and a status write nothing; a real step writes the routing and the state once`, async () => {
      const s = await session(testRelease({router}))
      await startRollout(s, {canaryImage: 'ghcr.io/acme/web:v2', signal})
      expect((await rolloutStatus(s, {signal})).canaryWeight).toBe(10)

      const noOp = await requestsOf(() => stepRollout(s, {weight: 10, force: false, wait: false, signal}))
      expect(noOp.writes).toEqual([])
      expect(repeatedReads(noOp.reads)).toEqual([])

      const status = await requestsOf(() => rolloutStatus(s, {signal}))
      expect(status.writes).toEqual([])
      expect(repeatedReads(status.reads)).toEqual([])

      const step = await requestsOf(() => stepRollout(s, {weight: 20, force: true, wait: false, signal}))
      expect(step.writes.at(-1)).toBe('update configmaps/web-canary-state')
      expect(step.writes.filter((w) => w.includes('configmaps/web-canary-state'))).toHaveLength(1)
      expect(step.writes.length).toBeGreaterThanOrEqual(2)
      expect(repeatedReads(step.reads)).toEqual([])
      // The kinds canary writes need no discovery.
      expect(step.all.filter((r) => /^\/apis?(\/[^/]+){0,2}$/.test(r.path))).toEqual([])
      expect((await rolloutStatus(s, {signal})).canaryWeight).toBe(20)
    })
  }

  it('the same step twice: the second one sends no write', async () => {
    const s = await session(testRelease({router: 'traefik'}))
    await startRollout(s, {canaryImage: 'ghcr.io/acme/web:v2', signal})
    await stepRollout(s, {weight: 30, force: true, wait: false, signal})
    const again = await requestsOf(() => stepRollout(s, {weight: 30, force: true, wait: false, signal}))
    expect(again.writes).toEqual([])
  })
})
