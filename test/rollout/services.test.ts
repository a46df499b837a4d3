import {describe, expect, it} from 'vitest'

import {AnalysisFailedError, ConflictError, InconclusiveError, NotFoundError, UsageError} from '../../src/errors.js'
import type {Plan, RolloutState} from '../../src/rollout/core/types.js'
import {abortRollout, exitCodeFor, promoteRollout, runRollout, startRollout, stepRollout, type RolloutSession} from '../../src/rollout/services.js'
import type {RolloutPorts} from '../../src/rollout/ports.js'
import {FakeMetrics, FakeRouter, FakeTarget, ManualClock, MemoryStore} from '../helpers/rollout/fakes.js'
import {INTERVAL_MS, aPlan, version, windowOf} from './builders.js'

const signal = new AbortController().signal

/** A session on fakes; the canary errs at `canaryErrorRate`, traffic is `rps` requests/s. */
function aSession(options: {canaryErrorRate?: number; rps?: number; plan?: Plan} = {}) {
  const router = new FakeRouter()
  const target = new FakeTarget()
  const store = new MemoryStore<RolloutState>()
  const clock = new ManualClock(1_000_000)
  const metrics = new FakeMetrics(({sinceMs, untilMs}) => {
    const requests = Math.floor(((untilMs - sinceMs) / 1000) * (options.rps ?? 100))
    const canary = Math.floor((requests * router.current.canary) / router.current.total)
    return windowOf(version(canary, Math.round(canary * (options.canaryErrorRate ?? 0))), version(requests - canary), sinceMs, untilMs)
  })
  const prepared: string[] = []
  const ports: RolloutPorts = {
    router,
    target,
    metrics,
    store,
    prepare: async (image) => void prepared.push(image),
    check: async () => undefined,
    endpoints: async () => ({proxyUrl: 'http://127.0.0.1:8080'}),
    down: async () => ({stopped: []}),
  }
  // A loose judge: these tests are about the services, and their traffic has no errors at all,
  // which proves a 0.1-point tolerance only after minutes (docs/analysis.md, "Limits").
  const session: RolloutSession = {name: 'shop', plan: options.plan ?? aPlan(undefined, {errorTolerance: {ratio: 1.5, points: 5}, latencyTolerance: {ratio: 1.5, points: 20}, maxFalsePassRate: 0.2}), specImage: 'acme/shop:v1', ports, clock}
  return {session, router, target, store, clock, prepared}
}

describe('the rollout services', () => {
  it('start prepares stable, waits for the canary and reports the first weight', async () => {
    const {session, prepared} = aSession()
    const status = await startRollout(session, {canaryImage: 'acme/shop:v2', signal})
    expect(prepared).toEqual(['acme/shop:v1'])
    expect(status).toMatchObject({phase: 'Progressing', canaryWeight: 20, plannedWeight: 20, proxy: {url: 'http://127.0.0.1:8080'}, step: {index: 1, count: 3}})
  })

  it('start refuses while a rollout is in progress (exit 5) and the stable image as canary (exit 2)', async () => {
    const {session} = aSession()
    await startRollout(session, {canaryImage: 'acme/shop:v2', signal})
    await expect(startRollout(session, {canaryImage: 'acme/shop:v3', signal})).rejects.toBeInstanceOf(ConflictError)
    const fresh = aSession()
    await expect(startRollout(fresh.session, {canaryImage: 'acme/shop:v1', signal})).rejects.toBeInstanceOf(UsageError)
  })

  it.each([
    ['not enough data yet', {rps: 1}, InconclusiveError],
    ['a failing canary', {canaryErrorRate: 0.2}, AnalysisFailedError],
  ])('step refuses %s with its exit code', async (_name, options, error) => {
    const {session, clock} = aSession(options)
    await startRollout(session, {canaryImage: 'acme/shop:v2', signal})
    clock.nowMs += INTERVAL_MS
    await expect(stepRollout(session, {force: false, wait: false, signal})).rejects.toBeInstanceOf(error)
  })

  it('step --wait waits for enough data instead of refusing', async () => {
    const {session} = aSession({rps: 20})
    await startRollout(session, {canaryImage: 'acme/shop:v2', signal})
    const status = await stepRollout(session, {force: false, wait: true, timeoutMs: 60_000, signal})
    expect(status.plannedWeight).toBe(50)
  })

  it('step, promote and abort without a rollout are not found (exit 4); abort twice is fine', async () => {
    const {session} = aSession()
    await expect(stepRollout(session, {force: true, wait: false, signal})).rejects.toBeInstanceOf(NotFoundError)
    await expect(abortRollout(session, {signal})).rejects.toBeInstanceOf(NotFoundError)
    await startRollout(session, {canaryImage: 'acme/shop:v2', signal})
    expect((await abortRollout(session, {signal})).phase).toBe('Aborted')
    expect((await abortRollout(session, {signal})).phase).toBe('Aborted')
    await expect(promoteRollout(session, {force: true, signal})).rejects.toBeInstanceOf(NotFoundError)
  })

  it.each([
    ['a healthy canary is promoted', {}, 'promoted', 0],
    ['a failing canary is rolled back', {canaryErrorRate: 0.2}, 'rolledBack', 10],
    ['a canary without traffic times out as inconclusive', {rps: 0}, 'inconclusive', 13],
  ])('run: %s', async (_name, options, outcome, exitCode) => {
    const {session} = aSession(options)
    const report = await runRollout(session, {canaryImage: 'acme/shop:v2', timeoutMs: 5 * INTERVAL_MS, signal})
    expect(report).toMatchObject({outcome, exitCode})
  })

  it('run of an image that the last rollout already promoted answers promoted again (idempotent CI re-runs)', async () => {
    const {session, target} = aSession()
    expect((await runRollout(session, {canaryImage: 'acme/shop:v2', signal})).exitCode).toBe(0)
    const deploys = target.calls.length
    expect(await runRollout(session, {canaryImage: 'acme/shop:v2', signal})).toMatchObject({exitCode: 0, outcome: 'promoted'})
    expect(target.calls.length).toBe(deploys)
  })

  it('maps every terminal phase to its documented exit code', () => {
    expect([exitCodeFor('Promoted'), exitCodeFor('RolledBack'), exitCodeFor('Aborted'), exitCodeFor('Paused'), exitCodeFor('Inconclusive'), exitCodeFor('Failed'), exitCodeFor('Progressing')]).toEqual([0, 10, 11, 12, 13, 14, null])
  })
})
