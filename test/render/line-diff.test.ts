import {describe, expect, it} from 'vitest'

import {lineDiff} from '../../src/render/line-diff.js'

describe('lineDiff', () => {
  it('is empty for equal texts', () => {
    expect(lineDiff('a\nb', 'a\nb')).toEqual([])
  })
  it('shows a changed line as deletion then insertion, with context', () => {
    expect(lineDiff('a\nb\nc\nd\ne\nf', 'a\nb\nc\nX\ne\nf', 1)).toEqual(['@@', '  c', '- d', '+ X', '  e'])
  })
  it('separates distant changes into hunks', () => {
    expect(lineDiff('1\n2\n3\n4\n5\n6\n7', 'A\n2\n3\n4\n5\n6\nB', 1)).toEqual(['@@', '- 1', '+ A', '  2', '@@', '  6', '- 7', '+ B'])
  })
})
