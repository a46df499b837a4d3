import {describe, expect, it} from 'vitest'

import {formatDurationMs, parseDurationMs} from '../../src/release/duration.js'
import type {Step} from '../../src/release/release.js'
import {currentWeight} from '../../src/rollout/core/plan.js'

describe('durations', () => {
  it.each([['400ms', 400], ['30s', 30_000], ['2m', 120_000], ['1h30m', 5_400_000], ['1.5s', 1500]])('parses %s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms)
  })
  it.each(['30', '2 minutes', 'soon', '', '5d', 'm5'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined()
  })
  it('formats back to the shortest exact spelling', () => {
    expect(formatDurationMs(5_400_000)).toBe('1h30m')
    expect(formatDurationMs(120_400)).toBe('2m400ms')
  })
})

describe('currentWeight (the one weight derivation, also used by render)', () => {
  const steps: Step[] = [{kind: 'setWeight', weight: 20}, {kind: 'pause', durationMs: 1000}, {kind: 'setWeight', weight: 50}, {kind: 'pause'}, {kind: 'setWeight', weight: 100}]
  it('is the latest setWeight at or before the step, pauses keeping it', () => {
    expect(steps.map((_, index) => currentWeight({steps}, index))).toEqual([20, 20, 50, 50, 100])
  })
  it('is 0 before any setWeight', () => {
    expect(currentWeight({steps: [{kind: 'pause'}, {kind: 'setWeight', weight: 10}]}, 0)).toBe(0)
  })
})
