import {describe, expect, it} from 'vitest'

import {statsWindow} from '../../src/proxy/control.js'
import {DURATION_BUCKETS_SECONDS, sumCounters, sumWindows, TrafficStats, windowStats} from '../../src/proxy/traffic-stats.js'

describe('TrafficStats', () => {
  it('counts requests per second and sums a window by version', () => {
    const stats = new TrafficStats(60)
    const t0 = 1_000_000_000_000
    stats.seriesFor('r', 's', 'v1').record(200, 0.002, t0)
    stats.seriesFor('r', 's', 'v1').record(503, 0.3, t0 + 1500)
    stats.seriesFor('r', 's', 'v2').record(404, 0.0005, t0 + 2500)
    const all = windowStats(stats.window('s', ['v1', 'v2'], t0, t0 + 3000))
    expect(all.v1).toMatchObject({requests: 2, errors: 1, codes: {'2xx': 1, '3xx': 0, '4xx': 0, '5xx': 1}})
    expect(all.v1?.latency.sum).toBeCloseTo(0.302)
    expect(all.v1?.latency.buckets.map((b) => b.le)).toEqual([...DURATION_BUCKETS_SECONDS, '+Inf'])
    expect(all.v1?.latency.buckets.find((b) => b.le === 0.0025)?.count).toBe(1)
    expect(all.v1?.latency.buckets.at(-1)?.count).toBe(2)
    expect(all.v2).toMatchObject({requests: 1, errors: 0, codes: {'4xx': 1}})
    // Whole seconds: a window starting in the second after the first request skips it.
    expect(windowStats(stats.window('s', ['v1'], t0 + 1000, t0 + 3000)).v1?.requests).toBe(1)
  })

  it('keeps client aborts out of a version\'s requests, codes and latency, and sums them across workers', () => {
    const t0 = 1_000_000_000_000
    const a = new TrafficStats(60)
    a.seriesFor('r', 's', 'v1').record(200, 0.002, t0)
    a.countClientAbort('s', 'v1', t0)
    a.countClientAbort('s', 'v1', t0 + 1000)
    const b = new TrafficStats(60)
    b.countClientAbort('s', 'v1', t0)
    const one = windowStats(a.window('s', ['v1'], t0, t0 + 2000)).v1
    expect(one).toMatchObject({requests: 1, errors: 0, clientAborts: 2, codes: {'2xx': 1, '4xx': 0, '5xx': 0}})
    expect(one?.latency.count).toBe(1)
    expect(windowStats(sumWindows([a.window('s', ['v1'], t0, t0 + 2000), b.window('s', ['v1'], t0, t0 + 2000)])).v1).toMatchObject({requests: 1, clientAborts: 3})
  })

  it('overwrites slots older than the retention (bounded memory)', () => {
    const stats = new TrafficStats(10)
    const t0 = 1_000_000_000_000
    stats.seriesFor('r', 's', 'v1').record(200, 0.001, t0)
    stats.seriesFor('r', 's', 'v1').record(200, 0.001, t0 + 10_000)
    expect(windowStats(stats.window('s', ['v1'], t0 - 60_000, t0 + 20_000)).v1?.requests).toBe(1)
  })

  it('sums snapshots and windows from several workers', () => {
    const a = new TrafficStats(60)
    const b = new TrafficStats(60)
    const t0 = 1_000_000_000_000
    a.seriesFor('r', 's', 'v1').record(200, 0.001, t0)
    b.seriesFor('r', 's', 'v1').record(200, 0.001, t0)
    b.seriesFor('r', 's', 'v1').record(500, 0.001, t0)
    const summed = sumCounters([a.snapshot(), b.snapshot()])
    expect(summed.requests).toEqual({'r\u0000s\u0000v1\u0000200': 2, 'r\u0000s\u0000v1\u0000500': 1})
    expect(windowStats(sumWindows([a.window('s', ['v1'], t0, t0), b.window('s', ['v1'], t0, t0)])).v1).toMatchObject({requests: 3, errors: 1})
  })
})

describe('statsWindow', () => {
  it('aligns since to whole seconds and clamps it to the retention', () => {
    expect(statsWindow(10_500, 3600, 20_000)).toEqual({sinceMs: 10_000, untilMs: 20_000, clamped: false})
    expect(statsWindow(0, 10, 100_000)).toEqual({sinceMs: 91_000, untilMs: 100_000, clamped: true})
  })
})
