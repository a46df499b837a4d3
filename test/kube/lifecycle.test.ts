/**
 * The rollout lifecycle on the Kubernetes target, through the real services and engine (#4), with
 * the real router, target and store against the fake API server. Only the metric source is a fake
 * (healthy or failing traffic); time is a manual clock, so nothing sleeps.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError, ConflictError, TimeoutError, UnreachableError} from '../../src/errors.js'
import {connectKube} from '../../src/kube/client.js'
import {ForbiddenError} from '../../src/kube/errors.js'
import {createKubernetesPorts} from '../../src/targets/kubernetes/adapters.js'
import {planFromRelease} from '../../src/rollout/plan-from-release.js'
import type {MetricSource} from '../../src/rollout/ports.js'
import {abortRollout, promoteRollout, rolloutStatus, runRollout, startRollout, stepRollout, type RolloutSession} from '../../src/rollout/services.js'
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

async function session(release: Release, options: {metrics?: MetricSource; context?: string} = {}): Promise<RolloutSession> {
  const clock = new ManualClock(1_700_000_000_000)
  const ports = await createKubernetesPorts({release, specFile: 'release.yaml', kube: {kubeconfig: fake.kubeconfigPath, ...(options.context === undefined ? {} : {context: options.context})}, clock})
  return {name: release.name, plan: planFromRelease(release), specImage: release.image.ref, ports: {...ports, metrics: options.metrics ?? new FakeMetrics(steadyTraffic(0))}, clock}
}

const image = (deployment: string) => (fake.get('apps/v1', 'Deployment', 'shop', deployment)?.spec as {template: {spec: {containers: Array<{image: string}>}}} | undefined)?.template.spec.containers[0]?.image
const V2 = 'ghcr.io/acme/web:v2'

const routers = [
  {router: 'nginx', match: true},
  {router: 'traefik', match: true},
  {router: 'traefik-v1', match: false},
  {router: 'gateway-api', match: true},
  {router: 'proxy', match: true},
] as const

describe('full lifecycle per router', () => {
  for (const {router, match} of routers) {
    it(`${router}: run promotes a healthy canary; stable runs v2, canary objects gone, all traffic to stable`, async () => {
      const s = await session(testRelease({router, match}))
      const report = await runRollout(s, {canaryImage: V2, signal})
      expect(report.outcome).toBe('promoted')
      expect(report.exitCode).toBe(0)
      expect(image('web')).toBe(V2)
      expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeUndefined()
      expect(fake.get('v1', 'Service', 'shop', 'web-canary')).toBeUndefined()
      expect((await s.ports.router.getWeights(signal)).canary).toBe(0)
      const state = JSON.parse((fake.get('v1', 'ConfigMap', 'shop', 'web-canary-state')?.data as Record<string, string>)['state.json'] ?? '{}') as {phase: string}
      expect(state.phase).toBe('Promoted')
    })
  }

  it('manual path: start sets the first weight, step advances, status reads weights from the router, promote finishes', async () => {
    const s = await session(testRelease({router: 'nginx'}))
    const started = await startRollout(s, {canaryImage: V2, signal})
    expect(started.phase).toBe('Progressing')
    expect(fake.get('networking.k8s.io/v1', 'Ingress', 'shop', 'web-canary')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBe('10')
    await stepRollout(s, {force: true, wait: false, signal})
    expect((await rolloutStatus(s, {signal})).canaryWeight).toBe(50)
    await promoteRollout(s, {force: true, signal})
    expect(image('web')).toBe(V2)
    expect(fake.get('networking.k8s.io/v1', 'Ingress', 'shop', 'web-canary')).toBeUndefined()
    expect(fake.get('networking.k8s.io/v1', 'Ingress', 'shop', 'web')).toBeDefined()
  })

  it('status reads the weight back from the router object, not from memory', async () => {
    const s = await session(testRelease({router: 'nginx'}))
    await startRollout(s, {canaryImage: V2, signal})
    const someoneElse = await connectKube({kubeconfig: fake.kubeconfigPath})
    await someoneElse.mergePatch({apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: 'shop', name: 'web-canary'}, {metadata: {annotations: {'nginx.ingress.kubernetes.io/canary-weight': '30'}}}, signal)
    expect((await rolloutStatus(s, {signal})).canaryWeight).toBe(30)
  })

  it('abort: weight 0 first, then the canary objects are removed; stable untouched', async () => {
    const s = await session(testRelease({router: 'gateway-api', match: true}))
    await startRollout(s, {canaryImage: V2, signal})
    const status = await abortRollout(s, {signal})
    expect(status.phase).toBe('Aborted')
    expect(image('web')).toBe('ghcr.io/acme/web:v1')
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeUndefined()
    const rules = (fake.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'shop', 'web')?.spec as {rules: Array<{backendRefs: Array<{name: string}>}>}).rules
    expect(rules.flatMap((r) => r.backendRefs.map((b) => b.name))).toEqual(['web'])
    const routeWrites = fake.writes('httproutes').map((w) => w.verb)
    const canaryDelete = fake.requests.findIndex((r) => r.verb === 'delete' && r.resource === 'deployments')
    const lastRouteWrite = fake.requests.map((r, i) => ({r, i})).filter(({r}) => r.resource === 'httproutes' && r.verb === 'patch').at(-1)?.i ?? -1
    expect(routeWrites.length).toBeGreaterThan(0)
    expect(lastRouteWrite).toBeLessThan(canaryDelete)
  })

  it('a failing canary is rolled back by run (exit 10) and removed', async () => {
    const s = await session(testRelease({router: 'traefik', match: true}), {metrics: new FakeMetrics(steadyTraffic(0.6))})
    const report = await runRollout(s, {canaryImage: V2, signal})
    expect(report.outcome).toBe('rolledBack')
    expect(report.exitCode).toBe(10)
    expect(image('web')).toBe('ghcr.io/acme/web:v1')
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeUndefined()
  })
})

describe('failure scenarios', () => {
  it('two CI jobs starting the same release: one succeeds, the other exits 5', async () => {
    const release = testRelease({router: 'nginx'})
    const [a, b] = [await session(release), await session(release)]
    const results = await Promise.allSettled([startRollout(a, {canaryImage: V2, signal}), startRollout(b, {canaryImage: V2, signal})])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(lost?.reason).toBeInstanceOf(ConflictError)
    expect((lost?.reason as ConflictError).exitCode).toBe(5)
  })

  it('an object of ours by name but not by label is refused (exit 5, naming it) and left as found', async () => {
    fake.seed({apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web-canary', namespace: 'shop'}, spec: {selector: {matchLabels: {app: 'theirs'}}, template: {metadata: {labels: {app: 'theirs'}}, spec: {containers: [{name: 'x', image: 'theirs:1'}]}}}})
    const users = fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')
    const s = await session(testRelease({router: 'nginx'}))
    const error = await startRollout(s, {canaryImage: V2, signal}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConflictError)
    expect((error as ConflictError).message).toContain('Deployment shop/web-canary')
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toEqual(users)
  })

  for (const kind of ['Deployment', 'Service'] as const) {
    it(`a canary ${kind} that is not ours is refused before any rollout is saved: once it is removed, start works`, async () => {
      const foreign = kind === 'Deployment'
        ? {apiVersion: 'apps/v1', kind, metadata: {name: 'web-canary', namespace: 'shop'}, spec: {selector: {matchLabels: {app: 'theirs'}}, template: {metadata: {labels: {app: 'theirs'}}, spec: {containers: [{name: 'x', image: 'theirs:1'}]}}}}
        : {apiVersion: 'v1', kind, metadata: {name: 'web-canary', namespace: 'shop'}, spec: {selector: {app: 'theirs'}, ports: [{port: 80}]}}
      fake.seed(foreign)
      const s = await session(testRelease({router: 'traefik'}))
      const error = await startRollout(s, {canaryImage: V2, signal}).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as ConflictError).message).toContain(`${kind} shop/web-canary: refusing to update it`)
      expect(await s.ports.store.load(signal)).toBeUndefined()
      await (await connectKube({kubeconfig: fake.kubeconfigPath})).delete({apiVersion: foreign.apiVersion, kind, namespace: 'shop', name: 'web-canary'}, signal)
      expect((await startRollout(s, {canaryImage: V2, signal})).phase).toBe('Progressing')
    })
  }

  it('an RBAC denial stops the command with an error naming the verb and the resource', async () => {
    fake.denyRules.push({verb: 'patch', resource: 'ingresses'})
    const s = await session(testRelease({router: 'nginx'}))
    const error = await startRollout(s, {canaryImage: V2, signal}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ForbiddenError)
    expect((error as ForbiddenError).message).toMatch(/cannot patch resource "ingresses" in API group "networking.k8s.io"/)
  })

  it('API server unreachable: exit 6 and nothing written anywhere', async () => {
    const s = await session(testRelease({router: 'nginx'}), {context: 'elsewhere'})
    const error = await startRollout(s, {canaryImage: V2, signal}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UnreachableError)
    expect((error as UnreachableError).exitCode).toBe(6)
    expect(fake.writes()).toEqual([])
  })

  it('a canary that never becomes available: exit 14, canary removed, no traffic ever sent to it', async () => {
    fake.deploymentBehaviour = (d) => (d.metadata?.name === 'web-canary' ? 'progress-deadline-exceeded' : 'available')
    const s = await session(testRelease({router: 'nginx'}))
    const error = await startRollout(s, {canaryImage: V2, signal}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TimeoutError)
    expect((error as TimeoutError).exitCode).toBe(14)
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeUndefined()
    const weightsSet = fake.requests.filter((r) => r.resource === 'ingresses' && r.verb === 'patch' && r.name === 'web-canary')
    expect(weightsSet.length).toBeLessThanOrEqual(1)
    expect(fake.get('networking.k8s.io/v1', 'Ingress', 'shop', 'web-canary')?.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight'] ?? '0').toBe('0')
  })

  it('nginx without spec.analysis.prometheus: start refuses with exit 3 before writing anything', async () => {
    const release = testRelease({router: 'nginx', noPrometheus: true})
    const ports = await createKubernetesPorts({release, specFile: 'release.yaml', kube: {kubeconfig: fake.kubeconfigPath}, clock: new ManualClock(0)})
    const s: RolloutSession = {name: release.name, plan: planFromRelease(release), specImage: release.image.ref, ports, clock: new ManualClock(0)}
    const error = await startRollout(s, {canaryImage: V2, signal}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems[0]?.path).toBe('spec.analysis.prometheus.url')
    expect(fake.writes()).toEqual([])
  })
})
