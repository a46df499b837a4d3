// The YAML layer shared by the spec and proxy loaders: the plain data it builds must be what YAML
// 1.2 says (the same as yaml's own toJS() for ordinary files), and positions must point at fields.
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {capProblems, parseConfigYaml} from '../../src/config-file/parse-config-yaml.js'

const value = (text: string) => {
  const parsed = parseConfigYaml(text, 'f.yaml')
  expect(parsed.problems).toEqual([])
  return parsed.value
}

describe('parseConfigYaml builds the data YAML 1.2 describes', () => {
  const sameAsYaml = [
    'a: 1\nb: [x, y, {c: null}]\nd: "q"\n',
    'a: &x {k: v}\nb: *x\nc: [*x, *x]\n',
    'a: [b: 1, c]\n',
    'a: |\n  two\n  lines\nb: >-\n  folded\n  text\n',
    'a: 0x1f\nb: 1e3\nc: .inf\nd: ~\ne: true\nf: "yes"\ng: yes\n',
    '- 1\n- - 2\n  - 3\n',
    '# only a comment\n',
  ]
  for (const text of sameAsYaml) {
    it(`as yaml.parse does for ${JSON.stringify(text).slice(0, 40)}`, () => {
      expect(value(text)).toEqual(parse(text) ?? null)
    })
  }

  it('applies merge keys: explicit keys win, then earlier sources over later ones', () => {
    expect(value('a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], x: 3}\n')).toEqual({a: {x: 1, y: 1}, b: {y: 2, z: 2}, c: {x: 3, y: 1, z: 2}})
    expect(value('a: &a {x: 1}\nc: {x: 3, <<: *a}\n')).toEqual({a: {x: 1}, c: {x: 3}})
  })

  it('treats a quoted "<<" as an ordinary key', () => {
    expect(value('a: {"<<": 1}\n')).toEqual({a: {'<<': 1}})
  })

  it('resolves an alias to the most recent anchor of that name before it', () => {
    expect(value('a: &n 1\nb: *n\nc: &n 2\nd: *n\n')).toEqual({a: 1, b: 1, c: 2, d: 2})
    expect(value('a: &n [&n inner, x]\nb: *n\n')).toEqual({a: ['inner', 'x'], b: 'inner'})
  })

  it('counts aliased values against the limit, not plain ones', () => {
    const many = `a: [${Array(5000).fill('v').join(', ')}]\n`
    expect(parseConfigYaml(many, 'f.yaml', {limits: {maxAliasedValues: 10}}).problems).toEqual([])
    const aliased = parseConfigYaml(`a: &a [1, 2, 3, 4, 5]\nb: [*a, *a]\n`, 'f.yaml', {limits: {maxAliasedValues: 10}})
    expect(aliased.problems[0]).toMatchObject({location: {file: 'f.yaml', line: 2, column: 9}, message: expect.stringMatching(/more than 10 values/)})
  })

  it('calls mapString once per scalar, for anchored values too', () => {
    const seen: string[] = []
    const parsed = parseConfigYaml('a: &x "$A"\nb: *x\nc: [*x]\n', 'f.yaml', {mapString: (text) => (seen.push(text), text.toLowerCase())})
    expect(parsed.value).toEqual({a: '$a', b: '$a', c: ['$a']})
    expect(seen.filter((text) => text === '$A')).toHaveLength(1)
  })
})

describe('parseConfigYaml locates fields', () => {
  const text = 'top:\n  list:\n    - name: one\n    - {name: two, extra: 2}\n  empty:\n'
  const parsed = parseConfigYaml(text, 'f.yaml')

  it('points at values, keys, list items and the nearest existing parent', () => {
    expect(parsed.locate(['top', 'list', 1, 'extra'])).toEqual({file: 'f.yaml', line: 4, column: 26})
    expect(parsed.locate(['top', 'list', 1, 'extra'], 'key')).toEqual({file: 'f.yaml', line: 4, column: 19})
    expect(parsed.locate(['top', 'list', 0])).toEqual({file: 'f.yaml', line: 3, column: 7})
    expect(parsed.locate(['top', 'list', 1, 'missing', 'deeper'])).toEqual({file: 'f.yaml', line: 4, column: 7})
    expect(parsed.locate(['top', 'empty'])).toEqual({file: 'f.yaml', line: 5, column: 3})
    expect(parsed.locate([])).toEqual({file: 'f.yaml', line: 1, column: 1})
  })

  it('lists every field in file order', () => {
    expect([...parsed.fields()].map((f) => f.path.join('.'))).toEqual(['top', 'top.list', 'top.list.0', 'top.list.0.name', 'top.list.1', 'top.list.1.name', 'top.list.1.extra', 'top.empty'])
  })
})

describe('capProblems', () => {
  it('keeps the first ones and counts the rest at the position of the first one left out', () => {
    const problems = Array.from({length: 5}, (_, i) => ({location: {file: 'f', line: i + 1}, path: '', message: `p${i}`}))
    expect(capProblems(problems, 2)).toEqual([problems[0], problems[1], {location: {file: 'f', line: 3}, path: '', message: '… and 3 more problems from here on (only the first 2 are listed)'}])
    expect(capProblems(problems, 5)).toEqual(problems)
  })
})
