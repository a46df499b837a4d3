/** src/kube against the fake API server through a real kubeconfig: conventions, error mapping, ownership. */
import {mkdtempSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError, ConflictError, UnreachableError} from '../../src/errors.js'
import {applyOwned, deleteOwned} from '../../src/kube/apply.js'
import {connectKube, type KubeClient} from '../../src/kube/client.js'
import {ForbiddenError} from '../../src/kube/errors.js'
import {MANAGED_BY_LABEL} from '../../src/kube/objects.js'
import {newRollout} from '../../src/rollout/core/decide.js'
import type {RolloutState} from '../../src/rollout/core/types.js'
import {rolloutStateSchema} from '../../src/rollout/state-schema.js'
import {KubernetesRolloutStore, STATE_KEY, stateConfigMapName} from '../../src/targets/kubernetes/kubernetes-store.js'
import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {rejection} from '../helpers/rejection.js'

let fake: FakeApiServer
let client: KubeClient
const signal = new AbortController().signal

const configMap = (name: string, data: Record<string, string>) => ({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name, namespace: 'shop'}, data})
const ref = (name: string) => ({apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name})

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  client = await connectKube({kubeconfig: fake.kubeconfigPath})
})

afterEach(async () => {
  await fake.close()
})

describe('connectKube follows kubectl conventions', () => {
  it('takes the namespace from the context, and -n overrides it', async () => {
    expect(client.namespace).toBe('shop')
    expect((await connectKube({kubeconfig: fake.kubeconfigPath, namespace: 'other'})).namespace).toBe('other')
  })

  it('reads KUBECONFIG when no --kubeconfig is given', async () => {
    const saved = process.env.KUBECONFIG
    process.env.KUBECONFIG = fake.kubeconfigPath
    try {
      expect((await connectKube()).server).toBe(fake.url)
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG
      else process.env.KUBECONFIG = saved
    }
  })

  it('says plainly that no kubeconfig was found instead of falling back to http://localhost:8080', async () => {
    const saved = {KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME}
    process.env.KUBECONFIG = ''
    process.env.HOME = mkdtempSync(join(tmpdir(), 'canary-no-kubeconfig-'))
    try {
      const error = await rejection(connectKube())
      expect(error).toBeInstanceOf(ConfigError)
      expect(error.message).toContain('no kubeconfig found')
      expect((error as ConfigError).suggestions.join(' ')).toContain('spec.local')
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key]
        else process.env[key] = value
      }
    }
  })

  it('selects --context, and names the known contexts when it does not exist', async () => {
    expect((await connectKube({kubeconfig: fake.kubeconfigPath, context: 'elsewhere'})).namespace).toBe('default')
    const error = await rejection(connectKube({kubeconfig: fake.kubeconfigPath, context: 'prod'}))
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).suggestions.join(' ')).toContain('fake, elsewhere')
  })

  it('maps an unreachable API server to exit 6, naming the server', async () => {
    const down = await connectKube({kubeconfig: fake.kubeconfigPath, context: 'elsewhere'})
    const error = await rejection(down.read(ref('x'), signal))
    expect(error).toBeInstanceOf(UnreachableError)
    expect((error as UnreachableError).exitCode).toBe(6)
    expect(error.message).toContain('ConfigMap shop/x: get failed: the Kubernetes API server at http://127.0.0.1:9 is unreachable (ECONNREFUSED)')
  })
})

describe('error mapping', () => {
  it('reads a missing object as undefined', async () => {
    expect(await client.read(ref('missing'), signal)).toBeUndefined()
  })

  it('maps 403 to ForbiddenError naming the verb and the resource, with the RBAC hint', async () => {
    fake.denyRules.push({verb: 'create', resource: 'configmaps'})
    const error = await rejection(client.create(configMap('x', {}), signal))
    expect(error).toBeInstanceOf(ForbiddenError)
    expect(error.message).toBe('ConfigMap shop/x: create failed: configmaps is forbidden: User "system:serviceaccount:ci:canary" cannot create resource "configmaps" in API group "" in the namespace "shop"')
    expect((error as ForbiddenError).exitCode).toBe(3)
    expect((error as ForbiddenError).toJSON()).toMatchObject({code: 'E_FORBIDDEN', verb: 'create', resource: 'configmaps'})
    expect((error as ForbiddenError).suggestions[0]).toContain('canary render --rbac')
  })

  it('names the verb RBAC refused, not the request\'s: an apply that creates needs "create" too', async () => {
    fake.denyRules.push({verb: 'create', resource: 'ingresses'})
    const ingress = {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: {name: 'x', namespace: 'shop'}, spec: {defaultBackend: {service: {name: 'web', port: {number: 80}}}}}
    const error = await rejection(client.apply(ingress, {force: true}, signal))
    expect(error).toBeInstanceOf(ForbiddenError)
    expect(error.message).toContain('Ingress shop/x: patch failed: ')
    expect((error as ForbiddenError).toJSON()).toMatchObject({code: 'E_FORBIDDEN', verb: 'create', resource: 'ingresses.networking.k8s.io'})
    expect((error as ForbiddenError).suggestions[0]).toContain('Grant "create" on "ingresses.networking.k8s.io"')
  })

  it('maps 422 to ConfigError carrying the server causes', async () => {
    const error = await rejection(client.create({apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', namespace: 'shop'}, spec: {template: {}}}, signal))
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems.map((p) => p.path)).toContain('spec.selector')
  })
})

describe('applyOwned and deleteOwned', () => {
  it('creates with the managed-by label, then sends nothing when the live object already matches', async () => {
    const first = await applyOwned(client, configMap('routing', {w: '0'}), 'web', signal)
    expect(first.written).toBe(true)
    expect(first.object.metadata?.labels?.[MANAGED_BY_LABEL]).toBe('canary')
    const writes = fake.writes().length
    const second = await applyOwned(client, configMap('routing', {w: '0'}), 'web', signal)
    expect(second.written).toBe(false)
    expect(fake.writes()).toHaveLength(writes)
    expect(fake.writes().at(-1)?.query).toMatchObject({fieldManager: 'canary', force: 'true'})
  })

  it('refuses to modify or delete an object it does not own (exit 5, naming it)', async () => {
    fake.seed(configMap('routing', {w: 'mine'}))
    const error = await rejection(applyOwned(client, configMap('routing', {w: '0'}), 'web', signal))
    expect(error).toBeInstanceOf(ConflictError)
    expect(error.message).toContain('ConfigMap shop/routing: refusing to update it')
    expect(await rejection(deleteOwned(client, ref('routing'), 'web', signal))).toBeInstanceOf(ConflictError)
    expect(fake.get('v1', 'ConfigMap', 'shop', 'routing')?.data).toEqual({w: 'mine'})
  })
})

describe('KubernetesRolloutStore', () => {
  it('round-trips state and guards every save by resourceVersion', async () => {
    const store = new KubernetesRolloutStore<{step: number}>(client, {name: 'web', namespace: 'shop'})
    expect(await store.load(signal)).toBeUndefined()
    const saved = await store.save({step: 0}, undefined, signal)
    expect(await store.load(signal)).toEqual(saved)
    const next = await store.save({step: 1}, saved.version, signal)
    expect(next.version).not.toBe(saved.version)
    await store.remove(signal)
    expect(await store.load(signal)).toBeUndefined()
  })

  it('refuses a corrupt rollout state by field (exit 3) instead of using it, and leaves the ConfigMap as it is', async () => {
    const store = new KubernetesRolloutStore<RolloutState>(client, {name: 'web', namespace: 'shop'}, rolloutStateSchema)
    const state = newRollout({name: 'web', stableImage: 'acme/web:v1', canaryImage: 'acme/web:v2', nowMs: 1})
    const saved = await store.save(state, undefined, signal)
    expect((await store.load(signal))?.value).toEqual(state)
    const live = fake.get('v1', 'ConfigMap', 'shop', stateConfigMapName('web'))!
    const corrupt = JSON.stringify({...state, stepIndex: 'two'})
    await client.replace({...live, data: {[STATE_KEY]: corrupt}, metadata: {...live.metadata, resourceVersion: saved.version}} as never, signal)
    const error = await rejection(store.load(signal))
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toBe('ConfigMap shop/web-canary-state: rollout state is corrupt: field data.state.json.stepIndex: expected a number, found "two"')
    expect(fake.get('v1', 'ConfigMap', 'shop', stateConfigMapName('web'))?.data).toEqual({[STATE_KEY]: corrupt})
  })

  it('two CI jobs racing: one success, one exit 5, no lost update', async () => {
    const jobA = new KubernetesRolloutStore<{by: string}>(await connectKube({kubeconfig: fake.kubeconfigPath}), {name: 'web', namespace: 'shop'})
    const jobB = new KubernetesRolloutStore<{by: string}>(await connectKube({kubeconfig: fake.kubeconfigPath}), {name: 'web', namespace: 'shop'})
    const base = await jobA.save({by: 'init'}, undefined, signal)
    const results = await Promise.allSettled([jobA.save({by: 'a'}, base.version, signal), jobB.save({by: 'b'}, base.version, signal)])
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(won).toHaveLength(1)
    expect(lost).toHaveLength(1)
    expect(lost[0]?.reason).toBeInstanceOf(ConflictError)
    expect((lost[0]?.reason as ConflictError).exitCode).toBe(5)
    const winner = (won[0] as PromiseFulfilledResult<{value: {by: string}}>).value.value.by
    expect((await jobA.load(signal))?.value.by).toBe(winner)
  })

  it('two jobs starting the same release: the second create is a conflict', async () => {
    const store = new KubernetesRolloutStore<{by: string}>(client, {name: 'web', namespace: 'shop'})
    await store.save({by: 'a'}, undefined, signal)
    expect(await rejection(store.save({by: 'b'}, undefined, signal))).toBeInstanceOf(ConflictError)
  })
})

describe('startup cost', () => {
  it('never loads @kubernetes/client-node (~400 ms of every cluster command): src/kube/client.ts speaks the API itself', () => {
    const offenders: string[] = []
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry)
        if (statSync(path).isDirectory()) walk(path)
        else if (path.endsWith('.ts') && /(from|import\()\s*'@kubernetes\/client-node'/.test(readFileSync(path, 'utf8'))) offenders.push(path)
      }
    }
    walk('src')
    expect(offenders).toEqual([])
  })
})
