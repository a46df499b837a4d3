import {afterEach, describe, expect, it} from 'vitest'

import {decide, newRollout} from '../../src/rollout/core/decide.js'
import {ProgressPrinter, formatStatus, styleFor, weightBar} from '../../src/cli/progress.js'
import type {RolloutStatus} from '../../src/rollout/services.js'
import {judgePolicyOf} from '../../src/rollout/core/analysis.js'
import {judgeBlocks} from '../../src/rollout/core/evidence.js'
import {aPlan, aPolicy, aRollout, blocksOf, healthy, observe} from '../rollout/builders.js'

/** A write stream stand-in that records what was written. */
function aStream(isTTY: boolean): NodeJS.WriteStream & {text: string} {
  const stream = {text: '', isTTY, columns: 120, write(chunk: string) {
    stream.text += chunk
    return true
  }}
  return stream as unknown as NodeJS.WriteStream & {text: string}
}

const saved = process.env.NO_COLOR
afterEach(() => {
  if (saved === undefined) delete process.env.NO_COLOR
  else process.env.NO_COLOR = saved
})

describe('progress output', () => {
  it('prints one plain line per decision without a terminal, each only once', () => {
    const stream = aStream(false)
    const printer = new ProgressPrinter(stream)
    const state = newRollout({name: 'shop', stableImage: 'a:v1', canaryImage: 'a:v2', nowMs: 0})
    const {next} = decide(state, {nowMs: 0}, aPlan())
    const tick = {state: next, version: '1', observation: observe(0, 0, healthy()), decision: {next, actions: [], immediate: false}}
    printer.onTick(tick)
    printer.onTick(tick)
    const lines = stream.text.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d Starting {4}rollout of a:v2 started \(stable a:v1\)$/)
    expect(stream.text).not.toContain('\u001B[')
  })

  it('draws a live line with the weight bar and per-version traffic in a terminal', () => {
    process.env.NO_COLOR = '1'
    const stream = aStream(true)
    const printer = new ProgressPrinter(stream)
    printer.setPlan(100, 3)
    const state = newRollout({name: 'shop', stableImage: 'a:v1', canaryImage: 'a:v2', nowMs: 0})
    printer.onTick({state, version: '1', observation: observe(10_000, 20, healthy()), decision: {next: state, actions: [], immediate: false}})
    expect(stream.text).toContain(`step 1/3 ${weightBar(20, 100)}  20%`)
    expect(stream.text).toMatch(/stable 100\.0 rps 0\.50% err p99 \d+ms │ canary 20\.0 rps 0\.50% err/)
  })

  it('honours NO_COLOR in a terminal', () => {
    process.env.NO_COLOR = '1'
    expect(styleFor(aStream(true)).red('x')).toBe('x')
    delete process.env.NO_COLOR
    expect(styleFor(aStream(true)).red('x')).toBe('\u001B[31mx\u001B[39m')
  })

  it('shows phase, step, weights read back and the planned weight when they differ', () => {
    const status = {
      name: 'shop', phase: 'Progressing', terminal: false, exitCode: null, step: {index: 2, count: 3, description: 'setWeight 50/100'},
      canaryWeight: 20, plannedWeight: 50, totalWeight: 100, stable: {image: 'a:v1'}, canary: {image: 'a:v2'}, proxy: {url: 'http://127.0.0.1:8080'},
      observed: null, analysis: null, endReason: null, message: null, startedAt: '', updatedAt: '', decisions: [],
    } satisfies RolloutStatus
    const text = formatStatus(status, styleFor(aStream(false)))
    expect(text).toContain('shop: Progressing')
    expect(text).toContain('step 2/3: setWeight 50/100')
    expect(text).toContain('canary 20/100 (plan: 50)')
    expect(text).toContain('proxy  http://127.0.0.1:8080')
  })

  it('shows each comparison with stable with its ratio, interval, tolerance and evidence, in status and the live line', () => {
    process.env.NO_COLOR = '1'
    const failingEvidence = judgeBlocks(blocksOf(120, {requests: 20, errors: 2}, {requests: 80, errors: 1}), judgePolicyOf(aPolicy())).evidence
    const {next} = decide(aRollout({stepIndex: 0, windowStartMs: 0, evidence: failingEvidence}), observe(10_000, 20, healthy()), aPlan(undefined, {successRatePercent: undefined}))
    const analysis = next.lastAnalysis!
    const status = {
      name: 'shop', phase: 'RollingBack', terminal: false, exitCode: null, step: {index: 1, count: 3, description: 'setWeight 20/100'},
      canaryWeight: 0, plannedWeight: 0, totalWeight: 100, stable: {image: 'a:v1'}, canary: {image: 'a:v2'}, proxy: {url: null},
      observed: null, analysis, endReason: null, message: null, startedAt: '', updatedAt: '', decisions: [],
    } satisfies RolloutStatus
    const lines = formatStatus(status, styleFor(aStream(false))).split('\n')
    expect(lines.find((l) => /^\s+errorRateVsStable\s/.test(l))).toMatch(/\d\.\d\d % \(stable 1\.\d\d %\) ratio \d\.\d\d× \[\d+\.\d+×, \d+\.\d+×\] tolerated 1\.50×, evidence pass \S+\/20\.0 rollback \S+\/133 {2}Failed/)
    const stream = aStream(true)
    const printer = new ProgressPrinter(stream)
    printer.onTick({state: next, version: '1', observation: observe(10_000, 20, healthy()), decision: {next, actions: [], immediate: false}})
    expect(stream.text).toMatch(/ 20% {2}errors \d\.\d\d× \(≤ 1\.50×\) pass \S+\/20\.0 rollback \S+\/133/)
  })
})
