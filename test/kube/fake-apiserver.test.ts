/**
 * The fake API server, driven by the real @kubernetes/client-node through a kubeconfig: if these
 * pass, the adapters' tests exercise the same requests and errors a cluster would give them.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import * as k8s from '@kubernetes/client-node'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'

let fake: FakeApiServer
let kc: k8s.KubeConfig

function deployment(name: string, image = 'shop:1'): k8s.V1Deployment {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name, namespace: 'shop', labels: {app: name}},
    spec: {selector: {matchLabels: {app: name}}, template: {metadata: {labels: {app: name}}, spec: {containers: [{name: 'app', image}, {name: 'sidecar', image: 'envoy:1'}]}}},
  }
}

function statusOf(error: unknown): {code: number; reason: string; message: string} {
  expect(error).toBeInstanceOf(k8s.ApiException)
  const e = error as k8s.ApiException<unknown>
  const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as {reason: string; message: string}
  return {code: e.code, reason: body.reason, message: body.message}
}

async function failure(promise: Promise<unknown>): Promise<{code: number; reason: string; message: string}> {
  try {
    await promise
  } catch (error) {
    return statusOf(error)
  }
  throw new Error('expected the request to fail')
}

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  kc = new k8s.KubeConfig()
  kc.loadFromFile(fake.kubeconfigPath)
})

afterEach(async () => {
  await fake.close()
})

describe('fake API server driven by client-node', () => {
  it('creates, reads and lists with the typed API, with defaults and a resourceVersion', async () => {
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    const created = await apps.createNamespacedDeployment({namespace: 'shop', body: deployment('web')})
    expect(created.spec?.replicas).toBe(1)
    expect(created.metadata?.resourceVersion).toMatch(/^\d+$/)
    const read = await apps.readNamespacedDeployment({name: 'web', namespace: 'shop'})
    expect(read.status?.availableReplicas).toBe(1)
    expect(read.status?.observedGeneration).toBe(1)
    const list = await apps.listNamespacedDeployment({namespace: 'shop', labelSelector: 'app=web'})
    expect(list.items.map((d) => d.metadata?.name)).toEqual(['web'])
    expect((await apps.listNamespacedDeployment({namespace: 'shop', labelSelector: 'app=other'})).items).toEqual([])
  })

  it('serves discovery so KubernetesObjectApi works for built-in and custom kinds', async () => {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
    await objects.create({apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: {name: 'web', namespace: 'shop'}, spec: {weighted: {services: [{name: 'web-stable', port: 80, weight: 90}]}}} as k8s.KubernetesObject)
    const read = await objects.read({apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: {name: 'web', namespace: 'shop'}})
    expect((read as unknown as {spec: {weighted: {services: Array<{weight: number}>}}}).spec.weighted.services[0]?.weight).toBe(90)
  })

  it('answers 404 NotFound and 409 AlreadyExists with metav1.Status bodies', async () => {
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    expect(await failure(apps.readNamespacedDeployment({name: 'nope', namespace: 'shop'}))).toEqual({code: 404, reason: 'NotFound', message: 'deployments.apps "nope" not found'})
    await apps.createNamespacedDeployment({namespace: 'shop', body: deployment('web')})
    expect(await failure(apps.createNamespacedDeployment({namespace: 'shop', body: deployment('web')}))).toMatchObject({code: 409, reason: 'AlreadyExists'})
  })

  it('refuses a stale PUT and a stale merge patch with 409 Conflict', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api)
    const first = await core.createNamespacedConfigMap({namespace: 'shop', body: {metadata: {name: 'state'}, data: {a: '1'}}})
    await core.replaceNamespacedConfigMap({name: 'state', namespace: 'shop', body: {...first, data: {a: '2'}}})
    expect(await failure(core.replaceNamespacedConfigMap({name: 'state', namespace: 'shop', body: {...first, data: {a: '3'}}}))).toMatchObject({code: 409, reason: 'Conflict'})
    const stale = {metadata: {resourceVersion: first.metadata?.resourceVersion}, data: {a: '4'}}
    expect(await failure(core.patchNamespacedConfigMap({name: 'state', namespace: 'shop', body: stale}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)))).toMatchObject({code: 409})
    expect(fake.get('v1', 'ConfigMap', 'shop', 'state')?.data).toEqual({a: '2'})
  })

  it('merges containers by name with a strategic merge patch, replaces the list with a merge patch', async () => {
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    await apps.createNamespacedDeployment({namespace: 'shop', body: deployment('web')})
    const strategic = await apps.patchNamespacedDeployment({name: 'web', namespace: 'shop', body: {spec: {template: {spec: {containers: [{name: 'app', image: 'shop:2'}]}}}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch))
    expect(strategic.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`)).toEqual(['app=shop:2', 'sidecar=envoy:1'])
    expect(strategic.metadata?.generation).toBe(2)
    const merge = await apps.patchNamespacedDeployment({name: 'web', namespace: 'shop', body: {spec: {template: {spec: {containers: [{name: 'app', image: 'shop:3'}]}}}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
    expect(merge.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['app'])
  })

  it('applies JSON patches, and a failed test operation is a conflict', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api)
    await core.createNamespacedConfigMap({namespace: 'shop', body: {metadata: {name: 'state'}, data: {a: '1'}}})
    const patched = await core.patchNamespacedConfigMap({name: 'state', namespace: 'shop', body: [{op: 'replace', path: '/data/a', value: '2'}, {op: 'add', path: '/data/b', value: '3'}]})
    expect(patched.data).toEqual({a: '2', b: '3'})
    expect(await failure(core.patchNamespacedConfigMap({name: 'state', namespace: 'shop', body: [{op: 'test', path: '/data/a', value: '1'}]}))).toMatchObject({code: 409})
  })

  it('rejects strategic merge patch on custom resources with 415, as the real server does', async () => {
    fake.seed({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: {name: 'web', namespace: 'shop'}, spec: {rules: [{backendRefs: [{name: 'web', port: 80}]}]}})
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
    const error = await failure(objects.patch({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: {name: 'web', namespace: 'shop', labels: {a: 'b'}}}))
    expect(error).toMatchObject({code: 415, reason: 'UnsupportedMediaType'})
  })

  it('server-side apply: creates, conflicts with another manager, wins with force, removes dropped fields', async () => {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
    const apply = (data: Record<string, string>, manager: string, force?: boolean) =>
      objects.patch({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'routing', namespace: 'shop'}, data} as k8s.V1ConfigMap, undefined, undefined, manager, force, k8s.PatchStrategy.ServerSideApply)
    await apply({weight: '10', extra: 'x'}, 'canary')
    const error = await failure(apply({weight: '20'}, 'helm'))
    expect(error.code).toBe(409)
    expect(error.message).toBe('Apply failed with 1 conflict: conflict with "canary": .data.weight')
    await apply({weight: '20'}, 'helm', true)
    await apply({extra: 'x'}, 'canary')
    expect(fake.get('v1', 'ConfigMap', 'shop', 'routing')?.data).toEqual({weight: '20', extra: 'x'})
    await apply({}, 'canary')
    expect(fake.get('v1', 'ConfigMap', 'shop', 'routing')?.data).toEqual({weight: '20'})
  })

  it('answers 422 Invalid for objects failing the official schema or DNS-1123 names', async () => {
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    const bad = deployment('web') as {spec?: {selector?: unknown}}
    delete bad.spec?.selector
    const schema = await failure(apps.createNamespacedDeployment({namespace: 'shop', body: bad as k8s.V1Deployment}))
    expect(schema).toMatchObject({code: 422, reason: 'Invalid'})
    expect(schema.message).toContain('Deployment.apps "web" is invalid: spec.selector: Required value')
    const name = await failure(apps.createNamespacedDeployment({namespace: 'shop', body: deployment('Web_App')}))
    expect(name.message).toContain('metadata.name: Invalid value: "Web_App"')
  })

  it('denies by RBAC rule with a Forbidden status naming verb and resource', async () => {
    fake.denyRules.push({verb: 'patch', resource: 'deployments'})
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    await apps.createNamespacedDeployment({namespace: 'shop', body: deployment('web')})
    const error = await failure(apps.patchNamespacedDeployment({name: 'web', namespace: 'shop', body: {spec: {replicas: 2}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)))
    expect(error).toEqual({code: 403, reason: 'Forbidden', message: 'deployments.apps "web" is forbidden: User "system:serviceaccount:ci:canary" cannot patch resource "deployments" in API group "apps" in the namespace "shop"'})
  })

  it('serves Secrets, and users added with their own token get only their own rules (resourceNames, also on a watch by name)', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api)
    await core.createNamespacedSecret({namespace: 'shop', body: {metadata: {name: 'admin'}, data: {token: Buffer.from('t').toString('base64')}}})
    await core.createNamespacedConfigMap({namespace: 'shop', body: {metadata: {name: 'routing'}}})
    await core.createNamespacedConfigMap({namespace: 'shop', body: {metadata: {name: 'other'}}})
    const podKc = new k8s.KubeConfig()
    podKc.loadFromFile(fake.addUser('system:serviceaccount:shop:web-proxy', [{apiGroups: [''], resources: ['configmaps'], resourceNames: ['routing'], verbs: ['get', 'list', 'watch']}]))
    const pod = podKc.makeApiClient(k8s.CoreV1Api)
    expect((await pod.readNamespacedConfigMap({name: 'routing', namespace: 'shop'})).metadata?.name).toBe('routing')
    expect((await pod.listNamespacedConfigMap({namespace: 'shop', fieldSelector: 'metadata.name=routing'})).items.map((c) => c.metadata?.name)).toEqual(['routing'])
    expect(await failure(pod.readNamespacedConfigMap({name: 'other', namespace: 'shop'}))).toMatchObject({code: 403, message: expect.stringContaining('User "system:serviceaccount:shop:web-proxy" cannot get resource "configmaps"') as unknown})
    expect(await failure(pod.listNamespacedConfigMap({namespace: 'shop'}))).toMatchObject({code: 403})
    expect(await failure(pod.readNamespacedSecret({name: 'admin', namespace: 'shop'}))).toMatchObject({code: 403})
    // The kubeconfig's own user is unaffected by the added user's rules.
    expect((await core.readNamespacedSecret({name: 'admin', namespace: 'shop'})).data?.token).toBe(Buffer.from('t').toString('base64'))
  })

  it('streams watch events from a resourceVersion', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api)
    const first = await core.createNamespacedConfigMap({namespace: 'shop', body: {metadata: {name: 'routing'}, data: {w: '0'}}})
    const seen: string[] = []
    let resolveSeen: () => void = () => undefined
    const done = new Promise<void>((resolve) => (resolveSeen = resolve))
    const controller = await new k8s.Watch(kc).watch('/api/v1/namespaces/shop/configmaps', {fieldSelector: 'metadata.name=routing', resourceVersion: first.metadata?.resourceVersion},
      (type: string, object: k8s.V1ConfigMap) => {
        seen.push(`${type}:${object.data?.w ?? '-'}`)
        if (seen.length === 2) resolveSeen()
      }, () => undefined)
    await core.patchNamespacedConfigMap({name: 'routing', namespace: 'shop', body: {data: {w: '10'}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
    await core.deleteNamespacedConfigMap({name: 'routing', namespace: 'shop'})
    await done
    controller.abort()
    expect(seen).toEqual(['MODIFIED:10', 'DELETED:10'])
  })

  it('lets tests steer Deployment status: manual, then made available through the status subresource', async () => {
    fake.deploymentBehaviour = () => 'manual'
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    await apps.createNamespacedDeployment({namespace: 'shop', body: deployment('web')})
    expect((await apps.readNamespacedDeployment({name: 'web', namespace: 'shop'})).status?.availableReplicas).toBeUndefined()
    fake.makeDeploymentAvailable('shop', 'web')
    expect((await apps.readNamespacedDeployment({name: 'web', namespace: 'shop'})).status?.availableReplicas).toBe(1)
  })

  it('proxies GETs to a pod through /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy', async () => {
    const upstream = http.createServer((request, response) => response.end(`path=${request.url}`))
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    try {
      fake.seed({apiVersion: 'v1', kind: 'Pod', metadata: {name: 'proxy-1', namespace: 'shop'}, spec: {containers: [{name: 'proxy', image: 'canary:1'}]}})
      fake.setPodProxy('shop', 'proxy-1', 9090, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`)
      const core = kc.makeApiClient(k8s.CoreV1Api)
      expect(await core.connectGetNamespacedPodProxyWithPath({name: 'proxy-1:9090', namespace: 'shop', path: 'metrics'})).toBe('path=/metrics')
    } finally {
      upstream.close()
    }
  })
})
