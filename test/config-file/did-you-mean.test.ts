import {describe, expect, it} from 'vitest'

import {didYouMean} from '../../src/config-file/did-you-mean.js'

describe('didYouMean (both config files, steps, targets, templates)', () => {
  it.each([
    ['replica', ['image', 'replicas', 'port'], 'replicas'],
    ['ngnix', ['nginx', 'traefik', 'proxy'], 'nginx'],
    // A swap of neighbours is one edit: two swaps fit the limit of 2 for a short name.
    ['damni', ['listen', 'admin', 'tls'], 'admin'],
    ['psraed', ['port', 'spread', 'steps'], 'spread'],
    ['LISTEN', ['listen'], 'listen'],
    ['setWieght', ['setWeight', 'pause'], 'setWeight'],
  ])('guesses %s → %s', (input, candidates, expected) => {
    expect(didYouMean(input, candidates)).toBe(expected)
  })

  it.each([
    ['zzzzzz', ['listen', 'admin']],
    // Three edits in a 6-letter name is beyond one typo per three letters.
    ['lxxxen', ['listen']],
    ['', ['a-long-name']],
  ])('does not guess %s from %j', (input, candidates) => {
    expect(didYouMean(input, candidates)).toBeUndefined()
  })

  it('prefers the closer of two candidates, and the first of two equally close ones', () => {
    expect(didYouMean('weigth', ['height', 'weight'])).toBe('weight')
    expect(didYouMean('ab', ['ba', 'ac'])).toBe('ba')
  })

  it('gives up on a hostile input or candidate list instead of spending time on it', () => {
    expect(didYouMean('x'.repeat(65), ['x'.repeat(65)])).toBeUndefined()
    // At most 1000 candidates are compared (a proxy config may name thousands of services).
    const far = Array.from({length: 5000}, () => 'qqqqqq')
    expect(didYouMean('listen', [...far, 'listen'])).toBeUndefined()
    expect(didYouMean('listen', ['listen', ...far])).toBe('listen')
  })
})
