/**
 * In-memory fakes of the rollout ports, for engine and service tests: a router that remembers its
 * weights, a target whose readiness the test sets, scripted metrics, a versioned store and a manual clock.
 */
import {ConflictError} from '../../../src/errors.js'
import type {WindowMetrics} from '../../../src/rollout/core/metrics.js'
import {weights, type Weights} from '../../../src/rollout/core/weights.js'
import type {Clock, MetricSource, Readiness, RolloutStore, StagedSave, Target, Track, TrafficRouter, Versioned} from '../../../src/rollout/ports.js'

/** A router that stores the split; `calls` records every write. */
export class FakeRouter implements TrafficRouter {
  readonly kind = 'fake'
  current: Weights = weights(0)
  readonly calls: string[] = []
  failReads = false

  async reconcile(): Promise<void> {
    this.calls.push('reconcile')
  }

  async setWeights(w: Weights): Promise<void> {
    this.calls.push(`setWeights ${w.canary}`)
    this.current = w
  }

  async getWeights(): Promise<Weights> {
    if (this.failReads) throw new Error('connect ECONNREFUSED 127.0.0.1:9901')
    return this.current
  }

  async finalize(outcome: 'promoted' | 'aborted'): Promise<void> {
    this.calls.push(`finalize ${outcome}`)
    this.current = weights(0, this.current.total)
  }
}

/** A target whose canary readiness is set by the test. */
export class FakeTarget implements Target {
  readonly kind = 'fake'
  canaryReadiness: Readiness = {ready: true, readyReplicas: 1, replicas: 1}
  readonly calls: string[] = []

  async deployCanary(image: string): Promise<void> {
    this.calls.push(`deployCanary ${image}`)
  }

  async readiness(track: Track): Promise<Readiness> {
    return track === 'canary' ? this.canaryReadiness : {ready: true, readyReplicas: 1, replicas: 1}
  }

  async promote(image: string): Promise<void> {
    this.calls.push(`promote ${image}`)
  }

  async removeCanary(): Promise<void> {
    this.calls.push('removeCanary')
  }
}

/** Metrics computed by a function of the window, so tests can model traffic over time. */
export class FakeMetrics implements MetricSource {
  readonly kind = 'fake'
  constructor(public produce: (window: {sinceMs: number; untilMs: number}) => WindowMetrics) {}

  async read(window: {readonly sinceMs: number; readonly untilMs: number}): Promise<WindowMetrics> {
    return this.produce(window)
  }
}

/** A versioned in-memory store with the same conflict rule as the real ones. */
export class MemoryStore<T> implements RolloutStore<T> {
  private stored: Versioned<T> | undefined
  private revision = 0

  async load(): Promise<Versioned<T> | undefined> {
    return this.stored
  }

  async save(value: T, expectedVersion: string | undefined, _signal?: AbortSignal): Promise<Versioned<T>> {
    if (this.stored?.version !== expectedVersion) throw new ConflictError(`rollout state: changed by another operation (expected version ${expectedVersion}, found ${this.stored?.version})`)
    this.revision++
    this.stored = {value: structuredClone(value), version: String(this.revision)}
    return this.stored
  }

  async stage(value: T, expectedVersion: string | undefined): Promise<StagedSave<T>> {
    if (this.stored?.version !== expectedVersion) throw new ConflictError(`rollout state: changed by another operation (expected version ${expectedVersion}, found ${this.stored?.version})`)
    return {commit: async () => this.save(value, expectedVersion), discard: async () => undefined}
  }

  async remove(): Promise<void> {
    this.stored = undefined
  }
}

/** A clock that only moves when slept on or advanced. */
export class ManualClock implements Clock {
  constructor(public nowMs = 0) {}

  now(): number {
    return this.nowMs
  }

  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    this.nowMs += ms
  }
}
