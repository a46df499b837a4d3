import {describe, expect, it} from 'vitest'

import {UpstreamGate, type GateRefusal} from '../../src/proxy/upstream-gate.js'
import {eventually} from './helpers.js'

/** A waiter that records what happened to it. */
function waiter(name: string, log: string[]) {
  return {
    admitted: () => log.push(`${name} admitted`),
    refused: (reason: GateRefusal) => log.push(`${name} ${reason}`),
  }
}

describe('upstream gate', () => {
  it('admits up to the limit, queues in order, and hands each freed connection to the next waiter', () => {
    const log: string[] = []
    const gate = new UpstreamGate(2, 10, 60_000)
    for (const name of ['a', 'b', 'c', 'd']) gate.enter(waiter(name, log))
    expect(log).toEqual(['a admitted', 'b admitted'])
    expect([gate.active, gate.queued]).toEqual([2, 2])
    gate.leave()
    gate.leave()
    expect(log).toEqual(['a admitted', 'b admitted', 'c admitted', 'd admitted'])
    expect([gate.active, gate.queued]).toEqual([2, 0])
    gate.leave()
    gate.leave()
    expect([gate.active, gate.queued]).toEqual([0, 0])
  })

  it('refuses at once beyond the queue bound, and with a queue of 0 at the cap', () => {
    const log: string[] = []
    const gate = new UpstreamGate(1, 1, 60_000)
    gate.enter(waiter('a', log))
    gate.enter(waiter('b', log))
    gate.enter(waiter('c', log))
    expect(log).toEqual(['a admitted', 'c queue_full'])
    const noQueue = new UpstreamGate(1, 0, 60_000)
    noQueue.enter(waiter('x', log))
    noQueue.enter(waiter('y', log))
    expect(log.slice(2)).toEqual(['x admitted', 'y queue_full'])
  })

  it('skips a cancelled waiter and does not count it', () => {
    const log: string[] = []
    const gate = new UpstreamGate(1, 1, 60_000)
    gate.enter(waiter('a', log))
    const ticket = gate.enter(waiter('b', log))
    ticket?.cancel()
    ticket?.cancel()
    expect(gate.queued).toBe(0)
    gate.enter(waiter('c', log))
    gate.leave()
    expect(log).toEqual(['a admitted', 'c admitted'])
    expect(gate.active).toBe(1)
  })

  it('refuses waiters whose time is up, in order, and keeps the rest', async () => {
    const log: string[] = []
    const gate = new UpstreamGate(1, 10, 50)
    gate.enter(waiter('a', log))
    gate.enter(waiter('b', log))
    gate.enter(waiter('c', log))
    await eventually(() => log.length === 3)
    expect(log).toEqual(['a admitted', 'b queue_timeout', 'c queue_timeout'])
    expect(gate.queued).toBe(0)
    gate.enter(waiter('d', log))
    gate.leave()
    expect(log.at(-1)).toBe('d admitted')
  })

  it('lets mirrors in only when a connection is free and nobody waits', () => {
    const log: string[] = []
    const gate = new UpstreamGate(1, 10, 60_000)
    expect(gate.tryEnter()).toBe(true)
    expect(gate.tryEnter()).toBe(false)
    gate.enter(waiter('a', log))
    gate.leave()
    expect(log).toEqual(['a admitted'])
    expect(gate.tryEnter()).toBe(false)
  })

  it('stays consistent when an admitted waiter leaves at once (its client is gone)', () => {
    const gate = new UpstreamGate(1, 10, 60_000)
    const log: string[] = []
    gate.enter(waiter('a', log))
    gate.enter({admitted: () => gate.leave(), refused: () => undefined})
    gate.enter(waiter('c', log))
    gate.leave()
    expect(log).toEqual(['a admitted', 'c admitted'])
    expect([gate.active, gate.queued]).toEqual([1, 0])
  })

  it('tells when it is idle: at once, or once the last holder and waiter are gone', () => {
    const gate = new UpstreamGate(1, 10, 60_000)
    let idle = 0
    gate.whenIdle(() => idle++)
    expect(idle).toBe(1)
    const log: string[] = []
    gate.enter(waiter('a', log))
    const ticket = gate.enter(waiter('b', log))
    gate.enter(waiter('c', log))
    gate.whenIdle(() => idle++)
    ticket?.cancel()
    gate.leave()
    expect(idle).toBe(1)
    gate.leave()
    expect(idle).toBe(2)
  })
})
