/**
 * The one contract every Kubernetes TrafficRouter passes, against the fake API server driven by
 * the real client: round-trips, idempotence (no second write), finalize, ownership, RBAC.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConflictError} from '../../src/errors.js'
import {connectKube, type KubeClient} from '../../src/kube/client.js'
import {ForbiddenError} from '../../src/kube/errors.js'
import {canaryPercent, weights, type Weights} from '../../src/rollout/core/weights.js'
import type {TrafficRouter} from '../../src/rollout/ports.js'
import type {Release} from '../../src/spec/release.js'
import {startFakeApiServer, type FakeApiServer, type KubeObject} from '../helpers/fake-apiserver/index.js'

/** How to build one router for the contract. */
export interface RouterContractSetup {
  /** Label in test names. */
  readonly name: string
  readonly release: (totalWeight?: number) => Release
  readonly create: (client: KubeClient, release: Release) => TrafficRouter
  /** The object whose weights the router reads: a user's object of that name makes the router refuse. */
  readonly weightsObject: {readonly apiVersion: string; readonly kind: string; readonly name: string}
  /** A valid user-owned object of the same kind (no canary labels). */
  readonly userObject: (name: string) => KubeObject
  /** Resource as RBAC names it, e.g. `ingresses`. */
  readonly resource: string
  /** What an administrator applied beforehand (e.g. the proxy's ServiceAccount). */
  readonly cluster?: (fake: FakeApiServer) => void
}

const signal = new AbortController().signal

/** Registers the contract tests for one router. */
export function trafficRouterContract(setup: RouterContractSetup): void {
  describe(`TrafficRouter contract: ${setup.name}`, () => {
    let fake: FakeApiServer
    let client: KubeClient
    let release: Release
    let router: TrafficRouter

    beforeEach(async () => {
      fake = await startFakeApiServer({namespace: 'shop'})
      setup.cluster?.(fake)
      client = await connectKube({kubeconfig: fake.kubeconfigPath})
      release = setup.release()
      router = setup.create(client, release)
    })

    afterEach(async () => {
      await fake.close()
    })

    const live = () => fake.get(setup.weightsObject.apiVersion, setup.weightsObject.kind, 'shop', setup.weightsObject.name)

    it('declares its kind and capabilities', () => {
      expect(router.kind).toMatch(/^[a-z0-9-]+$/)
      expect(Object.keys(router.capabilities).sort()).toEqual(['cookieMatch', 'headerMatch', 'headerPattern', 'mirror', 'sticky'])
    })

    it('reconcile creates the routing objects, labelled as canary\'s, with the canary at 0', async () => {
      await router.reconcile(signal)
      expect(live()?.metadata?.labels).toMatchObject({'app.kubernetes.io/managed-by': 'canary', 'canary.dev/release': 'web'})
      expect((await router.getWeights(signal)).canary).toBe(0)
    })

    for (const canary of [1, 10, 50, 99, 100]) {
      it(`setWeights then getWeights round-trips ${canary}/100`, async () => {
        await router.reconcile(signal)
        await router.setWeights(weights(canary, 100), signal)
        const read = await router.getWeights(signal)
        expect(canaryPercent(read)).toBeCloseTo(canary, 6)
      })
    }

    it('round-trips a fine-grained split (1/1000)', async () => {
      release = setup.release(1000)
      router = setup.create(client, release)
      await router.reconcile(signal)
      await router.setWeights(weights(1, 1000), signal)
      expect(canaryPercent(await router.getWeights(signal))).toBeCloseTo(0.1, 6)
    })

    it('reconcile twice, and the same weights twice, write nothing the second time', async () => {
      await router.reconcile(signal)
      const afterFirst = fake.writes().length
      await router.reconcile(signal)
      expect(fake.writes().slice(afterFirst)).toEqual([])
      await router.setWeights(weights(20, 100), signal)
      const afterSet = fake.writes().length
      await router.setWeights(weights(20, 100), signal)
      await router.reconcile(signal)
      expect(fake.writes().slice(afterSet)).toEqual([])
    })

    it('reconcile after a restart keeps the weights the world reports', async () => {
      await router.reconcile(signal)
      await router.setWeights(weights(30, 100), signal)
      const restarted = setup.create(await connectKube({kubeconfig: fake.kubeconfigPath}), release)
      await restarted.reconcile(signal)
      expect(canaryPercent(await restarted.getWeights(signal))).toBeCloseTo(30, 6)
    })

    for (const outcome of ['promoted', 'aborted'] as const) {
      it(`finalize(${outcome}) sends everything to stable and leaves user objects as found`, async () => {
        const user = fake.seed(setup.userObject('users-own'))
        await router.reconcile(signal)
        await router.setWeights(weights(50, 100), signal)
        await router.finalize(outcome, signal)
        expect((await router.getWeights(signal)).canary).toBe(0)
        expect(fake.get(setup.weightsObject.apiVersion, setup.weightsObject.kind, 'shop', 'users-own')).toEqual(user)
        const writes = fake.writes().length
        await router.finalize(outcome, signal)
        expect(fake.writes().length).toBe(writes)
      })
    }

    it('refuses an object of the same name it does not own (exit 5, naming it) and leaves it unchanged', async () => {
      const user = fake.seed(setup.userObject(setup.weightsObject.name))
      let error: unknown
      try {
        await router.reconcile(signal)
        await router.setWeights(weights(10, 100), signal)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as ConflictError).exitCode).toBe(5)
      expect((error as ConflictError).message).toContain(`${setup.weightsObject.kind} shop/${setup.weightsObject.name}`)
      expect(live()).toEqual(user)
    })

    it('an RBAC denial names the verb and the resource', async () => {
      fake.denyRules.push({verb: 'patch', resource: setup.resource})
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
