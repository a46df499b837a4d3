import {describe, expect, it} from 'vitest'

import {binomialLowerBound, binomialUpperBound, binomialUpperTail, logGamma} from '../../../src/rollout/core/statistics.js'

function exactUpperTail(k: number, n: number, p: number): number {
  let sum = 0
  for (let i = k; i <= n; i++) sum += Math.exp(logGamma(n + 1) - logGamma(i + 1) - logGamma(n - i + 1)) * p ** i * (1 - p) ** (n - i)
  return sum
}

describe('binomial statistics', () => {
  it.each([
    [3, 10, 0.2],
    [0, 10, 0.5],
    [10, 200, 0.05],
    [1, 1000, 0.005],
    [15, 40, 0.3],
  ])('the upper tail P(X ≥ %i) of Binomial(%i, %f) matches the direct sum', (k, n, p) => {
    expect(binomialUpperTail(k, n, p)).toBeCloseTo(exactUpperTail(k, n, p), 10)
  })

  it('gives the textbook Clopper–Pearson bound for zero events (1 − α^(1/n))', () => {
    expect(binomialUpperBound(0, 10, 0.05)).toBeCloseTo(1 - 0.05 ** (1 / 10), 8)
  })

  it('puts the true rate inside the bounds: at the lower bound the tail equals alpha', () => {
    const lower = binomialLowerBound(12, 200, 0.01)
    expect(binomialUpperTail(12, 200, lower)).toBeCloseTo(0.01, 8)
    expect(lower).toBeLessThan(12 / 200)
    expect(binomialUpperBound(12, 200, 0.01)).toBeGreaterThan(12 / 200)
  })
})
