/**
 * The Kubernetes REST protocol canary relies on, as @kubernetes/client-node sees it through a
 * kubeconfig: CRUD with defaults, discovery, metav1.Status errors, resourceVersion conflicts,
 * strategic/merge/JSON patches, server-side apply conflicts, 422 validation, RBAC denials, extra
 * users, watches, Deployment status and the pod proxy. It runs against the fake API server
 * (test/kube/fake-apiserver.test.ts) and the real kube-apiserver (test/cluster/apiserver-protocol.test.ts),
 * so every behaviour the fake imitates is checked against the real one.
 */
import * as k8s from '@kubernetes/client-node'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {AllowRule, KubeObject} from '../helpers/fake-apiserver/index.js'

/** One API server for one test, seen as an identity allowed every verb on the resources used here (in `namespace`). */
export interface ProtocolServer {
  readonly namespace: string
  readonly kubeconfigPath: string
  /** The identity's user name, as the server's messages spell it. */
  readonly user: string
  /** The stored object, read as an administrator. */
  get(apiVersion: string, kind: string, name: string): Promise<KubeObject | undefined>
  /** Creates an object as an administrator; returns the stored copy. */
  seed(object: KubeObject): Promise<KubeObject>
  /** Takes `verb` on `resource` away from the identity. */
  deny(verb: string, resource: string): Promise<void>
  /** A second identity (ServiceAccount `name` in `namespace`) allowed exactly `rules`; its kubeconfig and user name. */
  addUser(name: string, rules: readonly AllowRule[]): Promise<{kubeconfigPath: string; user: string}>
  /** A Pod `name` whose port `port` answers GETs with `bodyFor(path)`. */
  podUpstream(name: string): Promise<{port: number; bodyFor: (path: string) => string; stop: () => Promise<void>}>
  close(): Promise<void>
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

/** Polls `read` until `done` holds (10 s at most), returning the last value. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Registers the protocol tests against the servers `start` gives. */
export function apiServerProtocolContract(start: () => Promise<ProtocolServer>, label: string): void {
  let server: ProtocolServer
  let kc: k8s.KubeConfig
  let ns: string

  function deployment(name: string, image = 'shop:1'): k8s.V1Deployment {
    return {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name, namespace: ns, labels: {app: name}},
      spec: {selector: {matchLabels: {app: name}}, template: {metadata: {labels: {app: name}}, spec: {containers: [{name: 'app', image}, {name: 'sidecar', image: 'envoy:1'}]}}},
    }
  }

  beforeEach(async () => {
    server = await start()
    ns = server.namespace
    kc = new k8s.KubeConfig()
    kc.loadFromFile(server.kubeconfigPath)
  })

  afterEach(async () => {
    await server.close()
  })

  describe(`Kubernetes API protocol (${label})`, () => {
    it('creates, reads and lists with the typed API, with defaults and a resourceVersion', async () => {
      const apps = kc.makeApiClient(k8s.AppsV1Api)
      const created = await apps.createNamespacedDeployment({namespace: ns, body: deployment('web')})
      expect(created.spec?.replicas).toBe(1)
      expect(created.metadata?.resourceVersion).toMatch(/^\d+$/)
      // A controller marks it available (the fake's simulated one, the harness's stand-in on the real server).
      const read = await eventually(() => apps.readNamespacedDeployment({name: 'web', namespace: ns}), (d) => d.status?.availableReplicas === 1)
      expect(read.status?.observedGeneration).toBe(1)
      const list = await apps.listNamespacedDeployment({namespace: ns, labelSelector: 'app=web'})
      expect(list.items.map((d) => d.metadata?.name)).toEqual(['web'])
      expect((await apps.listNamespacedDeployment({namespace: ns, labelSelector: 'app=other'})).items).toEqual([])
    })

    it('serves discovery so KubernetesObjectApi works for built-in and custom kinds', async () => {
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
      await objects.create({apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: {name: 'web', namespace: ns}, spec: {weighted: {services: [{name: 'web-stable', port: 80, weight: 90}]}}} as k8s.KubernetesObject)
      const read = await objects.read({apiVersion: 'traefik.io/v1alpha1', kind: 'TraefikService', metadata: {name: 'web', namespace: ns}})
      expect((read as unknown as {spec: {weighted: {services: Array<{weight: number}>}}}).spec.weighted.services[0]?.weight).toBe(90)
    })

    it('answers 404 NotFound and 409 AlreadyExists with metav1.Status bodies', async () => {
      const apps = kc.makeApiClient(k8s.AppsV1Api)
      expect(await failure(apps.readNamespacedDeployment({name: 'nope', namespace: ns}))).toEqual({code: 404, reason: 'NotFound', message: 'deployments.apps "nope" not found'})
      await apps.createNamespacedDeployment({namespace: ns, body: deployment('web')})
      expect(await failure(apps.createNamespacedDeployment({namespace: ns, body: deployment('web')}))).toMatchObject({code: 409, reason: 'AlreadyExists'})
    })

    it('refuses a stale PUT and a stale merge patch with 409 Conflict', async () => {
      const core = kc.makeApiClient(k8s.CoreV1Api)
      const first = await core.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'state'}, data: {a: '1'}}})
      await core.replaceNamespacedConfigMap({name: 'state', namespace: ns, body: {...first, data: {a: '2'}}})
      expect(await failure(core.replaceNamespacedConfigMap({name: 'state', namespace: ns, body: {...first, data: {a: '3'}}}))).toMatchObject({code: 409, reason: 'Conflict'})
      const stale = {metadata: {resourceVersion: first.metadata?.resourceVersion}, data: {a: '4'}}
      expect(await failure(core.patchNamespacedConfigMap({name: 'state', namespace: ns, body: stale}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)))).toMatchObject({code: 409})
      expect((await server.get('v1', 'ConfigMap', 'state'))?.data).toEqual({a: '2'})
    })

    it('merges containers by name with a strategic merge patch, replaces the list with a merge patch', async () => {
      const apps = kc.makeApiClient(k8s.AppsV1Api)
      await apps.createNamespacedDeployment({namespace: ns, body: deployment('web')})
      const strategic = await apps.patchNamespacedDeployment({name: 'web', namespace: ns, body: {spec: {template: {spec: {containers: [{name: 'app', image: 'shop:2'}]}}}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch))
      expect(strategic.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`)).toEqual(['app=shop:2', 'sidecar=envoy:1'])
      expect(strategic.metadata?.generation).toBe(2)
      const merge = await apps.patchNamespacedDeployment({name: 'web', namespace: ns, body: {spec: {template: {spec: {containers: [{name: 'app', image: 'shop:3'}]}}}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
      expect(merge.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['app'])
    })

    it('applies JSON patches (replace may set a missing key), and a failed test operation is 422 Invalid', async () => {
      const core = kc.makeApiClient(k8s.CoreV1Api)
      await core.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'state'}, data: {a: '1'}}})
      const patched = await core.patchNamespacedConfigMap({name: 'state', namespace: ns, body: [{op: 'replace', path: '/data/a', value: '2'}, {op: 'add', path: '/data/b', value: '3'}]})
      expect(patched.data).toEqual({a: '2', b: '3'})
      expect((await core.patchNamespacedConfigMap({name: 'state', namespace: ns, body: [{op: 'replace', path: '/data/c', value: '4'}]})).data).toEqual({a: '2', b: '3', c: '4'})
      expect(await failure(core.patchNamespacedConfigMap({name: 'state', namespace: ns, body: [{op: 'remove', path: '/data/missing'}]}))).toMatchObject({code: 422, reason: 'Invalid'})
      expect(await failure(core.patchNamespacedConfigMap({name: 'state', namespace: ns, body: [{op: 'test', path: '/data/a', value: '1'}]}))).toEqual({code: 422, reason: 'Invalid', message: 'the server rejected our request due to an error in our request'})
    })

    it('rejects strategic merge patch on custom resources with 415, as the real server does', async () => {
      await server.seed({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: {name: 'web', namespace: ns}, spec: {rules: [{backendRefs: [{name: 'web', port: 80}]}]}})
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
      const error = await failure(objects.patch({apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: {name: 'web', namespace: ns, labels: {a: 'b'}}}))
      expect(error).toMatchObject({code: 415, reason: 'UnsupportedMediaType'})
    })

    it('server-side apply: creates, conflicts with another manager, wins with force, removes dropped fields', async () => {
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
      const apply = (data: Record<string, string>, manager: string, force?: boolean) =>
        objects.patch({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'routing', namespace: ns}, data} as k8s.V1ConfigMap, undefined, undefined, manager, force, k8s.PatchStrategy.ServerSideApply)
      await apply({weight: '10', extra: 'x'}, 'canary')
      const error = await failure(apply({weight: '20'}, 'helm'))
      expect(error.code).toBe(409)
      expect(error.message).toBe('Apply failed with 1 conflict: conflict with "canary": .data.weight')
      await apply({weight: '20'}, 'helm', true)
      await apply({extra: 'x'}, 'canary')
      expect((await server.get('v1', 'ConfigMap', 'routing'))?.data).toEqual({weight: '20', extra: 'x'})
      await apply({}, 'canary')
      expect((await server.get('v1', 'ConfigMap', 'routing'))?.data).toEqual({weight: '20'})
    })

    it('answers 422 Invalid for objects failing the official schema or DNS-1123 names', async () => {
      const apps = kc.makeApiClient(k8s.AppsV1Api)
      const bad = deployment('web') as {spec?: {selector?: unknown}}
      delete bad.spec?.selector
      const schema = await failure(apps.createNamespacedDeployment({namespace: ns, body: bad as k8s.V1Deployment}))
      expect(schema).toMatchObject({code: 422, reason: 'Invalid'})
      expect(schema.message).toBe('Deployment.apps "web" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`]')
      const name = await failure(apps.createNamespacedDeployment({namespace: ns, body: deployment('Web_App')}))
      expect(name.message).toContain('metadata.name: Invalid value: "Web_App"')
    })

    it('denies by RBAC rule with a Forbidden status naming verb and resource', async () => {
      await server.deny('patch', 'deployments')
      const apps = kc.makeApiClient(k8s.AppsV1Api)
      await apps.createNamespacedDeployment({namespace: ns, body: deployment('web')})
      const error = await failure(apps.patchNamespacedDeployment({name: 'web', namespace: ns, body: {spec: {replicas: 2}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)))
      expect(error).toEqual({code: 403, reason: 'Forbidden', message: `deployments.apps "web" is forbidden: User "${server.user}" cannot patch resource "deployments" in API group "apps" in the namespace "${ns}"`})
    })

    it('serves Secrets, and users added with their own token get only their own rules (resourceNames, also on a watch by name)', async () => {
      const core = kc.makeApiClient(k8s.CoreV1Api)
      await core.createNamespacedSecret({namespace: ns, body: {metadata: {name: 'admin'}, data: {token: Buffer.from('t').toString('base64')}}})
      await core.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'routing'}}})
      await core.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'other'}}})
      const podKc = new k8s.KubeConfig()
      const added = await server.addUser('web-proxy', [{apiGroups: [''], resources: ['configmaps'], resourceNames: ['routing'], verbs: ['get', 'list', 'watch']}])
      podKc.loadFromFile(added.kubeconfigPath)
      const pod = podKc.makeApiClient(k8s.CoreV1Api)
      expect((await pod.readNamespacedConfigMap({name: 'routing', namespace: ns})).metadata?.name).toBe('routing')
      expect((await pod.listNamespacedConfigMap({namespace: ns, fieldSelector: 'metadata.name=routing'})).items.map((c) => c.metadata?.name)).toEqual(['routing'])
      expect(await failure(pod.readNamespacedConfigMap({name: 'other', namespace: ns}))).toMatchObject({code: 403, message: expect.stringContaining(`User "${added.user}" cannot get resource "configmaps"`) as unknown})
      expect(await failure(pod.listNamespacedConfigMap({namespace: ns}))).toMatchObject({code: 403})
      expect(await failure(pod.readNamespacedSecret({name: 'admin', namespace: ns}))).toMatchObject({code: 403})
      // The kubeconfig's own user is unaffected by the added user's rules.
      expect((await core.readNamespacedSecret({name: 'admin', namespace: ns})).data?.token).toBe(Buffer.from('t').toString('base64'))
    })

    it('streams watch events from a resourceVersion', async () => {
      const core = kc.makeApiClient(k8s.CoreV1Api)
      const first = await core.createNamespacedConfigMap({namespace: ns, body: {metadata: {name: 'routing'}, data: {w: '0'}}})
      const seen: string[] = []
      let resolveSeen: () => void = () => undefined
      const done = new Promise<void>((resolve) => (resolveSeen = resolve))
      const controller = await new k8s.Watch(kc).watch(`/api/v1/namespaces/${ns}/configmaps`, {fieldSelector: 'metadata.name=routing', resourceVersion: first.metadata?.resourceVersion},
        (type: string, object: k8s.V1ConfigMap) => {
          seen.push(`${type}:${object.data?.w ?? '-'}`)
          if (seen.length === 2) resolveSeen()
        }, () => undefined)
      await core.patchNamespacedConfigMap({name: 'routing', namespace: ns, body: {data: {w: '10'}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
      await core.deleteNamespacedConfigMap({name: 'routing', namespace: ns})
      await done
      controller.abort()
      expect(seen).toEqual(['MODIFIED:10', 'DELETED:10'])
    })

    it('proxies GETs to a pod through /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy', async () => {
      const upstream = await server.podUpstream('proxy-1')
      try {
        const core = kc.makeApiClient(k8s.CoreV1Api)
        expect(await core.connectGetNamespacedPodProxyWithPath({name: `proxy-1:${upstream.port}`, namespace: ns, path: 'metrics'})).toBe(upstream.bodyFor('/metrics'))
      } finally {
        await upstream.stop()
      }
    })
  })
}
