/**
 * The in-cluster proxy follows its routing ConfigMap through the API: the router writes weights,
 * a real bundled proxy (src/proxy) picks them up from the watch and its state shows them.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {connectKube} from '../../src/kube/client.js'
import {followConfigMap, followConfigMapIntoProxy} from '../../src/routers/proxy/config-sync.js'
import {parseProxyConfig} from '../../src/proxy/config.js'
import {startProxy, type RunningProxy} from '../../src/proxy/server.js'
import {PROXY_CONFIG_FILE} from '../../src/routers/proxy/objects.js'
import {weights} from '../../src/rollout/core/weights.js'
import {KubeProxyRouter} from '../../src/routers/proxy/kube-router.js'
import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {seedProxyServiceAccount, testRelease} from './release-fixture.js'

let fake: FakeApiServer
let proxy: RunningProxy | undefined
let controller: AbortController

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  seedProxyServiceAccount(fake)
  controller = new AbortController()
  proxy = undefined
})

afterEach(async () => {
  delete process.env.CANARY_ADMIN_TOKEN
  controller.abort()
  await proxy?.close()
  await fake.close()
})

/** The pod's fixed ports (8080, admin 9901) as free loopback ports, so tests never collide. */
function podLocal(text: string): string {
  return text.replace(/0\.0\.0\.0:8080/, '127.0.0.1:0').replace(/0\.0\.0\.0:9901/, '127.0.0.1:0')
}

/** Resolves when `predicate` holds, re-checked on each delivered config; rejects after `ms`. */
function until(check: () => boolean, subscribe: (wake: () => void) => void, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('condition not met in time')), ms)
    const wake = () => {
      if (check()) {
        clearTimeout(timer)
        resolve()
      }
    }
    subscribe(wake)
    wake()
  })
}

describe('followConfigMap', () => {
  it('a weight change written by the router reaches a running proxy through the watch', async () => {
    const release = testRelease({router: 'proxy'})
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    const router = new KubeProxyRouter(client, release)
    await router.reconcile(controller.signal)
    await router.setWeights(weights(0, 100), controller.signal)
    const wakers: Array<() => void> = []
    const local = (text: string) => parseProxyConfig(podLocal(text), 'configmap:shop/web-proxy-config', {CANARY_ADMIN_TOKEN: 'from-the-secret'})
    await followConfigMap(client, {apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'web-proxy-config'}, PROXY_CONFIG_FILE, async (text) => {
      if (proxy === undefined) proxy = await startProxy(local(text), {log: () => undefined})
      else await proxy.reload(local(text))
      for (const wake of wakers) wake()
    }, controller.signal)
    const canaryWeight = () => proxy?.state().services.web?.versions.find((v) => v.name === 'canary')?.weight
    expect(canaryWeight()).toBe(0)
    await router.setWeights(weights(25, 100), controller.signal)
    await until(() => canaryWeight() === 25, (wake) => wakers.push(wake))
    await router.setWeights(weights(60, 100), controller.signal)
    await until(() => canaryWeight() === 60, (wake) => wakers.push(wake))
    expect(fake.requests.some((r) => r.verb === 'watch')).toBe(true)
  })

  it('canary proxy --follow-config-map: applies each change, refuses a broken one and keeps serving', async () => {
    const release = testRelease({router: 'proxy'})
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    const router = new KubeProxyRouter(client, release)
    await router.reconcile(controller.signal)
    const text = (fake.get('v1', 'ConfigMap', 'shop', 'web-proxy-config')?.data as Record<string, string>)[PROXY_CONFIG_FILE] ?? ''
    proxy = await startProxy(parseProxyConfig(podLocal(text), 'initial', {CANARY_ADMIN_TOKEN: 'from-the-secret'}), {log: () => undefined})
    const events: Array<Record<string, unknown>> = []
    const wakers: Array<() => void> = []
    const saved = process.env.KUBECONFIG
    process.env.KUBECONFIG = fake.kubeconfigPath
    // The pod's environment: the follower parses each ConfigMap text with it (admin.token is ${CANARY_ADMIN_TOKEN}).
    process.env.CANARY_ADMIN_TOKEN = 'from-the-secret'
    try {
      await followConfigMapIntoProxy('shop/web-proxy-config', proxy, controller.signal, (event) => {
        events.push(event)
        for (const wake of wakers) wake()
      })
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG
      else process.env.KUBECONFIG = saved
    }
    const canaryWeight = () => proxy?.state().services.web?.versions.find((v) => v.name === 'canary')?.weight
    await router.setWeights(weights(40, 100), controller.signal)
    await until(() => canaryWeight() === 40, (wake) => wakers.push(wake))
    await client.mergePatch({apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'web-proxy-config'}, {data: {[PROXY_CONFIG_FILE]: 'routes: [oops'}}, controller.signal)
    await until(() => events.some((e) => e.level === 'error'), (wake) => wakers.push(wake))
    expect(canaryWeight()).toBe(40)
  })

  it('resumes after the API server ends the watch, and still delivers later changes', async () => {
    const release = testRelease({router: 'proxy'})
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    const router = new KubeProxyRouter(client, release)
    await router.reconcile(controller.signal)
    const seen: string[] = []
    const wakers: Array<() => void> = []
    const ended: Array<Record<string, unknown>> = []
    await followConfigMap(client, {apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'web-proxy-config'}, PROXY_CONFIG_FILE, (text) => {
      seen.push(text)
      for (const wake of wakers) wake()
    }, controller.signal, {retryMs: 10, log: (event) => {
      ended.push(event)
      for (const wake of wakers) wake()
    }})
    const watchesBefore = fake.requests.filter((r) => r.verb === 'watch').length
    fake.endWatches()
    await until(() => ended.length > 0 && fake.requests.filter((r) => r.verb === 'watch').length > watchesBefore, (wake) => {
      wakers.push(wake)
      const timer = setInterval(wake, 20)
      controller.signal.addEventListener('abort', () => clearInterval(timer))
    })
    await router.setWeights(weights(70, 100), controller.signal)
    await until(() => seen.some((t) => /name: canary\n\s+weight: 70/.test(t)), (wake) => wakers.push(wake))
  })
})
