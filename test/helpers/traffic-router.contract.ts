/**
 * The contract every TrafficRouter passes, whatever it drives: reconcile starts at canary 0,
 * setWeights/getWeights round-trip (also for totals other than 100), reconcile and repeated
 * weights change nothing, a restarted router reads the split back from the world, and finalize
 * sends everything to stable. It runs against the local ProxyRouter on a real proxy
 * (test/local/proxy-router.test.ts) and every Kubernetes router on the fake and the real API
 * server (test/kube/traffic-router.contract.ts adds ownership, write counts and RBAC).
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {canaryPercent, weights} from '../../src/rollout/core/weights.js'
import type {TrafficRouter} from '../../src/rollout/ports.js'

/** One world (a proxy, an API server) with a router on it. */
export interface RouterWorld {
  readonly router: TrafficRouter
  /** A new router on the same world, as a CLI started again would build it. */
  restart(): Promise<TrafficRouter>
  close(): Promise<void>
}

/** How to start a world for one router kind. */
export interface TrafficRouterSetup {
  /** Label in test names. */
  readonly name: string
  /** Starts a world whose release has `totalWeight` (100 by default). */
  start(totalWeight?: number): Promise<RouterWorld>
}

const signal = new AbortController().signal

/** Registers the generic contract tests for one router. */
export function trafficRouterContract(setup: TrafficRouterSetup): void {
  describe(`TrafficRouter contract: ${setup.name}`, () => {
    let world: RouterWorld
    let router: TrafficRouter

    beforeEach(async () => {
      world = await setup.start()
      router = world.router
    })

    afterEach(async () => {
      await world.close()
    })

    it('declares its kind', () => {
      expect(router.kind).toMatch(/^[a-z0-9-]+$/)
    })

    it('reconcile leaves the canary at 0', async () => {
      await router.reconcile(signal)
      expect((await router.getWeights(signal)).canary).toBe(0)
    })

    for (const canary of [1, 10, 50, 99, 100]) {
      it(`setWeights then getWeights round-trips ${canary}/100`, async () => {
        await router.reconcile(signal)
        await router.setWeights(weights(canary, 100), signal)
        expect(canaryPercent(await router.getWeights(signal))).toBeCloseTo(canary, 6)
      })
    }

    for (const [canary, total] of [[1, 1000], [3, 400], [333, 100_000]] as const) {
      it(`round-trips a split of another total (${canary}/${total})`, async () => {
        await world.close()
        world = await setup.start(total)
        router = world.router
        await router.reconcile(signal)
        await router.setWeights(weights(canary, total), signal)
        expect(canaryPercent(await router.getWeights(signal))).toBeCloseTo((canary * 100) / total, 6)
      })
    }

    it('reconcile twice, and the same weights twice, keep the split', async () => {
      await router.reconcile(signal)
      await router.reconcile(signal)
      expect((await router.getWeights(signal)).canary).toBe(0)
      await router.setWeights(weights(20, 100), signal)
      await router.setWeights(weights(20, 100), signal)
      await router.reconcile(signal)
      expect(canaryPercent(await router.getWeights(signal))).toBeCloseTo(20, 6)
    })

    it('a restarted router reads the split back from the world, and its reconcile keeps it', async () => {
      await router.reconcile(signal)
      await router.setWeights(weights(30, 100), signal)
      const restarted = await world.restart()
      expect(canaryPercent(await restarted.getWeights(signal))).toBeCloseTo(30, 6)
      await restarted.reconcile(signal)
      expect(canaryPercent(await restarted.getWeights(signal))).toBeCloseTo(30, 6)
    })

    for (const outcome of ['promoted', 'aborted'] as const) {
      it(`finalize(${outcome}) sends everything to stable, and again changes nothing`, async () => {
        await router.reconcile(signal)
        await router.setWeights(weights(50, 100), signal)
        await router.finalize(outcome, signal)
        expect((await router.getWeights(signal)).canary).toBe(0)
        await router.finalize(outcome, signal)
        expect((await router.getWeights(signal)).canary).toBe(0)
      })
    }
  })
}
