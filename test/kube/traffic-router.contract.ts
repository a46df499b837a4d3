/**
 * The Kubernetes side of the TrafficRouter contract: every Kubernetes router first passes the
 * generic contract (test/helpers/traffic-router.contract.ts: round trips, totals, idempotence,
 * restart, finalize), then these extras: its objects carry canary's labels, a repeated reconcile or
 * split writes nothing, finalize leaves user objects alone, an object it does not own is refused,
 * and an RBAC denial names the verb and resource. It runs against an API server given as a
 * `ContractApiServer`: the fake (test/kube/routers.test.ts, the fast suite) and the real
 * kube-apiserver (test/cluster/routers-contract.test.ts, the cluster suite), so the fake is
 * checked against reality.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConflictError} from '../../src/errors.js'
import {connectKube, type KubeClient} from '../../src/kube/client.js'
import {ForbiddenError} from '../../src/kube/errors.js'
import {canaryPercent, weights, type Weights} from '../../src/rollout/core/weights.js'
import type {TrafficRouter} from '../../src/rollout/ports.js'
import type {Release} from '../../src/release/release.js'
import {startFakeApiServer, type FakeApiServer, type KubeObject} from '../helpers/fake-apiserver/index.js'
import {trafficRouterContract as genericTrafficRouterContract} from '../helpers/traffic-router.contract.js'

/** How to build one router for the contract. */
export interface RouterContractSetup {
  /** Label in test names. */
  readonly name: string
  /** The release, in namespace `shop` (the real server moves it to a fresh namespace). */
  readonly release: (totalWeight?: number) => Release
  readonly create: (client: KubeClient, release: Release) => TrafficRouter
  /** The object whose weights the router reads: a user's object of that name makes the router refuse. */
  readonly weightsObject: {readonly apiVersion: string; readonly kind: string; readonly name: string}
  /** A valid user-owned object of the same kind (no canary labels), in namespace `shop`. */
  readonly userObject: (name: string) => KubeObject
  /** Resource as RBAC names it, e.g. `ingresses`. */
  readonly resource: string
  /** What an administrator applied beforehand (e.g. the proxy's ServiceAccount). */
  readonly cluster?: (fake: FakeApiServer) => void
}

/** One API server for one contract test, seen by the router as the CLI identity. */
export interface ContractApiServer {
  /** Where the release lives (`shop` on the fake, a fresh namespace on the real server). */
  readonly namespace: string
  /** The CLI identity's kubeconfig. */
  readonly kubeconfigPath: string
  /** The stored object (as an administrator reads it), or undefined. */
  get(apiVersion: string, kind: string, name: string): Promise<KubeObject | undefined>
  /** Creates an object as another tool would (no canary labels); returns the stored copy. */
  seed(object: KubeObject): Promise<KubeObject>
  /** How many writes (create, update, patch, delete) the CLI identity has made so far. */
  writeCount(): Promise<number>
  /** Takes `verb` on `resource` away from the CLI identity. */
  deny(verb: string, resource: string): Promise<void>
  close(): Promise<void>
}

/** Starts the API server for one test of `setup`'s router, with whatever the release needs beforehand. */
export type ContractApiServerFactory = (setup: RouterContractSetup, release: Release) => Promise<ContractApiServer>

/** The fake API server (test/helpers/fake-apiserver), allowing everything unless denied. */
export const fakeContractServer: ContractApiServerFactory = async (setup) => {
  const fake = await startFakeApiServer({namespace: 'shop'})
  setup.cluster?.(fake)
  return {
    namespace: 'shop',
    kubeconfigPath: fake.kubeconfigPath,
    get: async (apiVersion, kind, name) => fake.get(apiVersion, kind, 'shop', name),
    seed: async (object) => fake.seed(object),
    writeCount: async () => fake.writes().length,
    deny: async (verb, resource) => void fake.denyRules.push({verb, resource}),
    close: () => fake.close(),
  }
}

const signal = new AbortController().signal

/** `object` moved to `namespace`. */
function inNamespace(object: KubeObject, namespace: string): KubeObject {
  return {...object, metadata: {...object.metadata, namespace}}
}

/** Registers the generic contract and the Kubernetes extras for one router. */
export function trafficRouterContract(setup: RouterContractSetup, startServer: ContractApiServerFactory = fakeContractServer, label = 'fake API server'): void {
  genericTrafficRouterContract({
    name: `${setup.name} (${label})`,
    start: async (totalWeight) => {
      const server = await startServer(setup, setup.release(totalWeight))
      const release = {...setup.release(totalWeight), namespace: server.namespace}
      const connect = async () => setup.create(await connectKube({kubeconfig: server.kubeconfigPath}), release)
      return {router: await connect(), restart: connect, close: () => server.close()}
    },
  })

  describe(`TrafficRouter contract, Kubernetes extras: ${setup.name} (${label})`, () => {
    let server: ContractApiServer
    let client: KubeClient
    let release: Release
    let router: TrafficRouter
    const releaseIn = (totalWeight?: number): Release => ({...setup.release(totalWeight), namespace: server.namespace})

    beforeEach(async () => {
      server = await startServer(setup, setup.release())
      client = await connectKube({kubeconfig: server.kubeconfigPath})
      release = releaseIn()
      router = setup.create(client, release)
    })

    afterEach(async () => {
      await server.close()
    })

    const live = () => server.get(setup.weightsObject.apiVersion, setup.weightsObject.kind, setup.weightsObject.name)
    const seedUserObject = (name: string) => server.seed(inNamespace(setup.userObject(name), server.namespace))

    it('reconcile creates the routing objects, labelled as canary\'s, with the canary at 0', async () => {
      await router.reconcile(signal)
      expect((await live())?.metadata?.labels).toMatchObject({'app.kubernetes.io/managed-by': 'canary', 'canary.dev/release': 'web'})
      expect((await router.getWeights(signal)).canary).toBe(0)
    })

    it('reconcile twice, and the same weights twice, write nothing the second time', async () => {
      await router.reconcile(signal)
      const afterFirst = await server.writeCount()
      expect(afterFirst).toBeGreaterThan(0)
      await router.reconcile(signal)
      expect(await server.writeCount()).toBe(afterFirst)
      await router.setWeights(weights(20, 100), signal)
      const afterSet = await server.writeCount()
      expect(afterSet).toBeGreaterThan(afterFirst)
      await router.setWeights(weights(20, 100), signal)
      await router.reconcile(signal)
      expect(await server.writeCount()).toBe(afterSet)
    })

    for (const outcome of ['promoted', 'aborted'] as const) {
      it(`finalize(${outcome}) sends everything to stable and leaves user objects as found`, async () => {
        const user = await seedUserObject('users-own')
        await router.reconcile(signal)
        await router.setWeights(weights(50, 100), signal)
        await router.finalize(outcome, signal)
        expect((await router.getWeights(signal)).canary).toBe(0)
        expect(await server.get(setup.weightsObject.apiVersion, setup.weightsObject.kind, 'users-own')).toEqual(user)
        const writes = await server.writeCount()
        await router.finalize(outcome, signal)
        expect(await server.writeCount()).toBe(writes)
      })
    }

    it('refuses an object of the same name it does not own (exit 5, naming it) and leaves it unchanged', async () => {
      const user = await seedUserObject(setup.weightsObject.name)
      let error: unknown
      try {
        await router.reconcile(signal)
        await router.setWeights(weights(10, 100), signal)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as ConflictError).exitCode).toBe(5)
      expect((error as ConflictError).message).toContain(`${setup.weightsObject.kind} ${server.namespace}/${setup.weightsObject.name}`)
      expect(await live()).toEqual(user)
    })

    it('an RBAC denial names the verb and the resource', async () => {
      await server.deny('patch', setup.resource)
      let error: unknown
      try {
        await router.reconcile(signal)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ForbiddenError)
      expect((error as Error).message).toContain(`cannot patch resource "${setup.resource}"`)
    })
  })
}

/** For router-specific tests: weights as a percentage. */
export function percentOf(w: Weights): number {
  return canaryPercent(w)
}
