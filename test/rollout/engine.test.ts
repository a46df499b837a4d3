import {describe, expect, it} from 'vitest'

import {ConflictError, IoError, UnreachableError} from '../../src/errors.js'
import {newRollout} from '../../src/rollout/core/decide.js'
import type {Plan, RolloutState} from '../../src/rollout/core/types.js'
import {weights} from '../../src/rollout/core/weights.js'
import {EVIDENCE_SAVE_INTERVAL_MS, RolloutEngine} from '../../src/rollout/engine.js'
import {FakeMetrics, FakeRouter, FakeTarget, ManualClock, MemoryStore} from '../helpers/rollout/fakes.js'
import {INTERVAL_MS, aPlan, pause, setWeight, version, windowOf} from './builders.js'

/** A world with 100 req/s split by the router's weight; the canary errs at `canaryErrorRate`. */
function world(options: {canaryErrorRate?: number; plan?: Plan} = {}) {
  const router = new FakeRouter()
  const target = new FakeTarget()
  const clock = new ManualClock(1_000_000)
  const store = new MemoryStore<RolloutState>()
  const metrics = new FakeMetrics(({sinceMs, untilMs}) => {
    const requests = Math.floor(((untilMs - sinceMs) / 1000) * 100)
    const canaryRequests = Math.floor((requests * router.current.canary) / router.current.total)
    const stableRequests = requests - canaryRequests
    return windowOf(version(canaryRequests, Math.round(canaryRequests * (options.canaryErrorRate ?? 0.005))), version(stableRequests, Math.round(stableRequests * 0.005)), sinceMs, untilMs)
  })
  const plan = options.plan ?? aPlan()
  const engine = new RolloutEngine({plan, router, target, metrics, store, clock})
  const begin = () => store.save(newRollout({name: 'my-app', stableImage: 'acme/my-app:v1', canaryImage: 'acme/my-app:v2', nowMs: clock.now()}), undefined, new AbortController().signal)
  return {router, target, clock, store, metrics, engine, begin, signal: new AbortController().signal}
}

describe('the rollout engine', () => {
  it('takes a healthy canary through 20 → 50 → 100 % and promotes it', async () => {
    const w = world()
    await w.begin()
    const {outcome, state} = await w.engine.run({signal: w.signal})
    expect(outcome).toBe('terminal')
    expect(state.phase).toBe('Promoted')
    expect(w.router.calls).toEqual(['reconcile', 'setWeights 20', 'setWeights 50', 'setWeights 100', 'setWeights 100', 'finalize promoted'])
    expect(w.target.calls).toEqual(['deployCanary acme/my-app:v2', 'promote acme/my-app:v2', 'removeCanary'])
    expect(state.stableImage).toBe('acme/my-app:v2')
  })

  it('rolls a bad canary back to weight 0 within two intervals of its first traffic', async () => {
    const w = world({canaryErrorRate: 0.05})
    await w.begin()
    let firstTrafficMs: number | undefined
    let zeroAtMs: number | undefined
    const original = w.router.setWeights.bind(w.router)
    w.router.setWeights = async (next) => {
      if (next.canary > 0) firstTrafficMs ??= w.clock.now()
      else if (firstTrafficMs !== undefined) zeroAtMs ??= w.clock.now()
      return original(next)
    }
    const {state} = await w.engine.run({signal: w.signal})
    expect(state.phase).toBe('RolledBack')
    expect(w.target.calls.at(-1)).toBe('removeCanary')
    expect(zeroAtMs! - firstTrafficMs!).toBeLessThanOrEqual(2 * INTERVAL_MS)
  })

  it('reads the step window every tick and rolls back a canary that turns bad after 20 healthy minutes within three intervals', async () => {
    const router = new FakeRouter()
    const clock = new ManualClock(0)
    const turnsBadAtMs = 20 * 60_000
    const windows: {sinceMs: number; untilMs: number}[] = []
    // 100 req/s split by weight; the canary errs 0.5 % until turnsBadAtMs, then 5 %.
    const metrics = new FakeMetrics(({sinceMs, untilMs}) => {
      windows.push({sinceMs, untilMs})
      const seconds = (from: number, to: number) => Math.max(0, to - from) / 1000
      const share = router.current.canary / router.current.total
      const goodS = seconds(sinceMs, Math.min(untilMs, turnsBadAtMs))
      const badS = seconds(Math.max(sinceMs, turnsBadAtMs), untilMs)
      const canaryRequests = Math.round((goodS + badS) * 100 * share)
      const canaryErrors = Math.round(goodS * 100 * share * 0.005 + badS * 100 * share * 0.05)
      const stableRequests = Math.round((goodS + badS) * 100 * (1 - share))
      return windowOf(version(canaryRequests, canaryErrors), version(stableRequests, Math.round(stableRequests * 0.005)), sinceMs, untilMs)
    })
    const store = new MemoryStore<RolloutState>()
    const engine = new RolloutEngine({plan: aPlan([setWeight(20), pause(60 * 60_000), setWeight(100)], {successRatePercent: undefined}), router, target: new FakeTarget(), metrics, store, clock})
    await store.save(newRollout({name: 'my-app', stableImage: 'acme/my-app:v1', canaryImage: 'acme/my-app:v2', nowMs: 0}), undefined, new AbortController().signal)
    let zeroAtMs: number | undefined
    const original = router.setWeights.bind(router)
    router.setWeights = async (next) => {
      if (next.canary === 0 && clock.now() > 0) zeroAtMs ??= clock.now()
      return original(next)
    }
    const {state} = await engine.run({signal: new AbortController().signal})
    expect(state.phase).toBe('RolledBack')
    expect(zeroAtMs! - turnsBadAtMs).toBeGreaterThan(0)
    // Over the whole step (1,200 healthy seconds) the same errors would take several minutes to show;
    // the judge bets on each second's new counts, with stakes sized on the recent seconds.
    expect(zeroAtMs! - turnsBadAtMs).toBeLessThanOrEqual(3 * INTERVAL_MS)
    // One read per tick, always since the weight was set: the judge takes the differences itself.
    const stepStartMs = Math.min(...windows.map((w) => w.sinceMs))
    expect(windows.every((w) => w.sinceMs === stepStartMs)).toBe(true)
    expect(windows.length).toBeGreaterThan(1200)
    expect(state.endMessage).toMatch(/errors worse than stable beyond the tolerance/)
  })

  it('stops at an indefinite pause and reports it', async () => {
    const w = world({plan: aPlan([setWeight(20), pause(), setWeight(100)])})
    await w.begin()
    const {outcome, state} = await w.engine.run({signal: w.signal})
    expect(outcome).toBe('paused')
    expect(state.phase).toBe('Paused')
  })

  it('gives up at the deadline and leaves the rollout where it is', async () => {
    const w = world()
    await w.begin()
    const {outcome, state} = await w.engine.run({signal: w.signal, deadlineMs: w.clock.now() + INTERVAL_MS / 2})
    expect(outcome).toBe('deadline')
    expect(state.phase).toBe('Progressing')
  })

  it('resumes from persisted state and trusts the router, not memory, for the current weight', async () => {
    const w = world()
    await w.begin()
    await w.engine.tick(w.signal) // deploy
    await w.engine.tick(w.signal) // ready → 20 %
    w.router.current = weights(0) // the proxy restarted and lost the split
    const {decision} = await w.engine.tick(w.signal)
    expect(decision.actions).toEqual([{type: 'setWeights', weights: weights(20)}])
    expect(w.router.current.canary).toBe(20)
  })

  it('reports an unreachable router as such (exit 6)', async () => {
    const w = world()
    await w.begin()
    await w.engine.tick(w.signal)
    w.router.failReads = true
    await w.engine.tick(w.signal).then(() => w.engine.tick(w.signal)).then(
      () => expect.fail('expected UnreachableError'),
      (error: unknown) => {
        expect(error).toBeInstanceOf(UnreachableError)
        expect((error as Error).message).toMatch(/fake router: reading weights failed: connect ECONNREFUSED/)
      },
    )
  })

  it('refuses to save over a state another operation changed meanwhile', async () => {
    const w = world()
    await w.begin()
    const load = w.store.load.bind(w.store)
    w.store.load = async () => {
      const loaded = await load()
      // Another command saves between our load and our save.
      await w.store.save({...loaded!.value, updatedAtMs: 1}, loaded!.version)
      return loaded
    }
    await expect(w.engine.tick(w.signal)).rejects.toBeInstanceOf(ConflictError)
  })

  it('runs a manual intent through the same decision code', async () => {
    const w = world()
    await w.begin()
    await w.engine.tick(w.signal)
    await w.engine.tick(w.signal)
    const {state, decision} = await w.engine.tick(w.signal, {kind: 'abort'})
    expect(decision.next.phase).toBe('RollingBack')
    expect(state.phase).toBe('Aborted')
    expect(w.router.current.canary).toBe(0)
  })
})

describe('the engine and an interrupt (Ctrl-C aborts the command signal)', () => {
  it('carries out and commits a decision that has begun acting, so the world and the saved state agree', async () => {
    const w = world()
    await w.begin()
    const interrupt = new AbortController()
    const signalsSeen: boolean[] = []
    // Ctrl-C arrives while the router is being reconciled, the first action of the first decision.
    Object.assign(w.router, {
      reconcile: async (signal: AbortSignal) => {
        interrupt.abort(new Error('SIGINT'))
        signalsSeen.push(signal.aborted)
        w.router.calls.push('reconcile')
      },
    })
    const {state} = await w.engine.tick(interrupt.signal)
    expect(signalsSeen).toEqual([false])
    expect(w.target.calls).toEqual(['deployCanary acme/my-app:v2'])
    expect((await w.store.load())?.value).toEqual(state)
    expect(state.deployedAtMs).toBeDefined()
    // The next tick honours the interrupt before it changes anything.
    await expect(w.engine.run({signal: interrupt.signal})).rejects.toThrow('SIGINT')
    expect(w.router.calls).toEqual(['reconcile'])
    expect(w.target.calls).toEqual(['deployCanary acme/my-app:v2'])
  })

  it('changes nothing when the interrupt came before the decision began acting', async () => {
    const w = world()
    await w.begin()
    const before = await w.store.load()
    const interrupt = new AbortController()
    interrupt.abort(new Error('SIGTERM'))
    await expect(w.engine.tick(interrupt.signal)).rejects.toThrow('SIGTERM')
    expect(w.router.calls).toEqual([])
    expect(w.target.calls).toEqual([])
    expect(await w.store.load()).toEqual(before)
  })
})

describe('the engine saves before it acts', () => {
  /** A store whose staging (write + version check) or commit fails, as on a full disk. */
  function failingStore(w: ReturnType<typeof world>, where: 'stage' | 'commit') {
    const stage = w.store.stage.bind(w.store)
    w.store.stage = async (value: RolloutState, expected: string | undefined) => {
      if (where === 'stage') throw new IoError('/x/.canary/shop/state.json: write failed: no space left on the device (ENOSPC)', {path: '/x/.canary/shop/state.json', errno: 'ENOSPC'})
      const staged = await stage(value, expected)
      return {...staged, commit: async () => {
        await staged.discard()
        throw new IoError('/x/.canary/shop/state.json: replace failed: input/output error (EIO)', {path: '/x/.canary/shop/state.json', errno: 'EIO'})
      }}
    }
  }

  it('does nothing to the router or the target when the next state cannot be staged', async () => {
    const w = world()
    await w.begin()
    await w.engine.tick(w.signal)
    await w.engine.tick(w.signal)
    const before = await w.store.load()
    const routerCalls = [...w.router.calls]
    const targetCalls = [...w.target.calls]
    failingStore(w, 'stage')
    await expect(w.engine.tick(w.signal, {kind: 'step', weight: 30, force: true})).rejects.toBeInstanceOf(IoError)
    expect(w.router.calls).toEqual(routerCalls)
    expect(w.target.calls).toEqual(targetCalls)
    expect(await w.store.load()).toEqual(before)
  })

  it('sets the weights back to what it read when the commit fails after acting', async () => {
    const w = world()
    await w.begin()
    await w.engine.tick(w.signal)
    await w.engine.tick(w.signal)
    expect(w.router.current).toEqual(weights(20))
    const before = await w.store.load()
    failingStore(w, 'commit')
    await expect(w.engine.tick(w.signal, {kind: 'step', weight: 30, force: true})).rejects.toThrow(/EIO/)
    expect(w.router.calls.slice(-2)).toEqual(['setWeights 30', 'setWeights 20'])
    expect(w.router.current).toEqual(weights(20))
    expect(await w.store.load()).toEqual(before)
  })
  it('routes as the winner saved when it loses a race after acting, not as it read before acting', async () => {
    // Two `canary step` race: both read step 20 %, both set 30 %; the winner saves first, then
    // this command's commit conflicts. Putting back the 20 % read before acting would leave the
    // router one step behind the winner's saved state.
    const w = world()
    await w.begin()
    await w.engine.tick(w.signal)
    await w.engine.tick(w.signal)
    expect(w.router.current).toEqual(weights(20))
    const stage = w.store.stage.bind(w.store)
    w.store.stage = async (value: RolloutState, expected: string | undefined) => {
      const staged = await stage(value, expected)
      return {...staged, commit: async () => {
        const live = (await w.store.load())!
        await w.store.save({...live.value, weightOverride: 40}, live.version)
        await w.router.setWeights(weights(40))
        throw new ConflictError('rollout state: changed by another operation')
      }}
    }
    await expect(w.engine.tick(w.signal, {kind: 'step', weight: 30, force: true})).rejects.toBeInstanceOf(ConflictError)
    expect((await w.store.load())!.value.weightOverride).toBe(40)
    expect(w.router.current).toEqual(weights(40))
  })
})

describe('when the engine saves', () => {
  /** A world whose store records every saved state, and an engine that counts its ticks. */
  function counted(plan: Plan) {
    const w = world({plan})
    const saved: RolloutState[] = []
    const save = w.store.save.bind(w.store)
    w.store.save = async (value, expectedVersion, signal) => {
      const result = await save(value, expectedVersion, signal)
      saved.push(value)
      return result
    }
    let ticks = 0
    const engine = new RolloutEngine({plan, router: w.router, target: w.target, metrics: w.metrics, store: w.store, clock: w.clock, onTick: () => ticks++})
    return {...w, engine, saved, ticks: () => ticks}
  }

  /** Requests of the canary in the evidence, closed blocks and the one being filled. */
  const canaryRequests = (state: RolloutState) => (state.evidence?.canary.requests ?? 0) + (state.evidence?.pending?.canary.requests ?? 0)

  it('during run, writes at looks and weight changes, not at every tick', async () => {
    const w = counted(aPlan([setWeight(20), pause(10 * 60_000), setWeight(100)]))
    await w.begin()
    const {outcome} = await w.engine.run({signal: w.signal, deadlineMs: w.clock.now() + 120_000})
    expect(outcome).toBe('deadline')
    expect(w.ticks()).toBeGreaterThanOrEqual(120)
    const looks = w.saved.at(-1)!.looks
    expect(looks).toBeGreaterThanOrEqual(10)
    // The start, ready/first weight and the step to the pause, then one save per look.
    expect(w.saved.length).toBeLessThanOrEqual(looks + 4)
    for (const [index, state] of w.saved.entries()) {
      if (index === 0) continue
      const {evidence: _a, ...now} = state
      const {evidence: _b, ...before} = w.saved[index - 1]!
      expect(now).not.toEqual(before)
    }
  })

  it('saves evidence gathered between looks at least every EVIDENCE_SAVE_INTERVAL_MS when looks are rarer', async () => {
    const w = counted(aPlan([setWeight(20), setWeight(100)], {intervalMs: 5 * 60_000}))
    await w.begin()
    await w.engine.run({signal: w.signal, deadlineMs: w.clock.now() + 100_000})
    const evidenceOnly = w.saved.filter((state, index) => index > 0 && state.looks === w.saved[index - 1]!.looks && state.decisions.length === w.saved[index - 1]!.decisions.length)
    expect(evidenceOnly.length).toBe(3)
    const readAt = evidenceOnly.map((state) => state.evidence!.lastReading!.atMs)
    // The interval, plus the tick that starts the next unsaved span.
    for (let i = 1; i < readAt.length; i++) expect(readAt[i]! - readAt[i - 1]!).toBe(EVIDENCE_SAVE_INTERVAL_MS + w.engine.tickMs)
    expect(w.saved.length).toBeLessThanOrEqual(evidenceOnly.length + 3)
  })

  it('drops its unsaved evidence, without a conflict, when another command saved first', async () => {
    const w = counted(aPlan([setWeight(20), pause(10 * 60_000), setWeight(100)]))
    await w.begin()
    await w.engine.tick(w.signal) // deploy
    await w.engine.tick(w.signal) // ready → 20 %
    await w.clock.sleep(1000, w.signal)
    await w.engine.tick(w.signal) // evidence only: kept in memory
    const savesBefore = w.saved.length
    const manual = new RolloutEngine({plan: aPlan([setWeight(20), pause(10 * 60_000), setWeight(100)]), router: w.router, target: w.target, metrics: w.metrics, store: w.store, clock: w.clock})
    await manual.tick(w.signal, {kind: 'step', weight: 30, force: true})
    expect(w.saved.length).toBe(savesBefore + 1)
    await w.clock.sleep(1000, w.signal)
    const {state} = await w.engine.tick(w.signal)
    expect(state.weightOverride).toBe(30)
    expect(w.router.current.canary).toBe(30)
  })

  it('a restarted engine reads again what a crash lost: its evidence counts the same requests', async () => {
    const plan = aPlan([setWeight(20), pause(10 * 60_000), setWeight(100)], {intervalMs: 5 * 60_000})
    const w = counted(plan)
    await w.begin()
    await w.engine.tick(w.signal) // deploy
    await w.engine.tick(w.signal) // ready → 20 %
    let inMemory: RolloutState | undefined
    for (let second = 0; second < 20; second++) {
      await w.clock.sleep(1000, w.signal)
      inMemory = (await w.engine.tick(w.signal)).state
    }
    const stored = (await w.store.load())!.value
    expect(canaryRequests(stored)).toBeLessThan(canaryRequests(inMemory!))
    // The process dies here; a new one looks at the same moment.
    const restarted = new RolloutEngine({plan, router: w.router, target: w.target, metrics: w.metrics, store: w.store, clock: w.clock})
    const {state} = await restarted.tick(w.signal)
    expect(canaryRequests(state)).toBe(canaryRequests(inMemory!))
    expect(state.evidence?.stable.requests ?? 0).toBeGreaterThan(0)
  })

  it('a step to the weight already set saves nothing', async () => {
    const w = counted(aPlan([setWeight(20), pause(10 * 60_000), setWeight(100)]))
    await w.begin()
    await w.engine.tick(w.signal) // deploy
    await w.engine.tick(w.signal) // ready → 20 %
    const saves = w.saved.length
    await w.clock.sleep(1000, w.signal)
    const {decision} = await w.engine.tick(w.signal, {kind: 'step', weight: 20, force: false})
    expect(decision.refusal).toBeUndefined()
    expect(w.saved.length).toBe(saves)
  })
})
