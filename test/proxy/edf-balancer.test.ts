import {describe, expect, it} from 'vitest'

import {EdfBalancer} from '../../src/proxy/edf-balancer.js'

function count(balancer: EdfBalancer<string>, picks: number, isUp: (item: string) => boolean = () => true): Record<string, number> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < picks; i++) {
    const item = balancer.pick(isUp)
    if (item !== undefined) counts[item] = (counts[item] ?? 0) + 1
  }
  return counts
}

describe('EdfBalancer', () => {
  it('sends exactly 8,000 ± 1 of 10,000 picks to the 80-weight entry at 80/20', () => {
    const balancer = new EdfBalancer<string>()
    balancer.add('v1', 80)
    balancer.add('v2', 20)
    const counts = count(balancer, 10_000)
    expect(Math.abs((counts.v1 ?? 0) - 8000)).toBeLessThanOrEqual(1)
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(10_000)
  })

  it('splits 3:1 exactly over four picks, like Traefik wrr_test', () => {
    const balancer = new EdfBalancer<string>()
    balancer.add('first', 3)
    balancer.add('second', 1)
    expect(count(balancer, 4)).toEqual({first: 3, second: 1})
  })

  it('honours sub-percent weights with a total of 1000', () => {
    const balancer = new EdfBalancer<string>()
    balancer.add('stable', 995)
    balancer.add('canary', 5)
    const counts = count(balancer, 10_000)
    expect(Math.abs((counts.canary ?? 0) - 50)).toBeLessThanOrEqual(1)
  })

  it('is deterministic: two balancers with the same weights pick the same sequence', () => {
    const a = new EdfBalancer<string>()
    const b = new EdfBalancer<string>()
    for (const x of [a, b]) {
      x.add('v1', 7)
      x.add('v2', 2)
      x.add('v3', 1)
    }
    const seqA = Array.from({length: 50}, () => a.pick(() => true))
    const seqB = Array.from({length: 50}, () => b.pick(() => true))
    expect(seqA).toEqual(seqB)
  })

  it('ignores non-positive weights', () => {
    const balancer = new EdfBalancer<string>()
    balancer.add('zero', 0)
    balancer.add('negative', -5)
    balancer.add('only', 1)
    expect(balancer.size).toBe(1)
    expect(count(balancer, 10)).toEqual({only: 10})
  })

  it('skips unavailable entries so their share goes to the others', () => {
    const balancer = new EdfBalancer<string>()
    balancer.add('v1', 80)
    balancer.add('v2', 20)
    expect(count(balancer, 100, (item) => item !== 'v2')).toEqual({v1: 100})
  })

  it('stops after one pass when nothing is available instead of spinning', () => {
    const balancer = new EdfBalancer<string>()
    balancer.add('v1', 1)
    balancer.add('v2', 1)
    let calls = 0
    expect(
      balancer.pick(() => {
        calls++
        return false
      }),
    ).toBeUndefined()
    expect(calls).toBe(2)
  })

  it('returns undefined when empty', () => {
    expect(new EdfBalancer<string>().pick(() => true)).toBeUndefined()
  })
})
