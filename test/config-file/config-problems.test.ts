import {describe, expect, it} from 'vitest'
import {z} from 'zod'

import {knownKeys, schemaProblems, sortProblems, type IssueWording} from '../../src/config-file/config-problems.js'
import {parseConfigYaml} from '../../src/config-file/parse-config-yaml.js'

const Schema = z.strictObject({
  top: z.strictObject({inner: z.string().optional(), other: z.int().optional()}).prefault({}),
  list: z.array(z.strictObject({name: z.string()})).optional(),
  map: z.record(z.string(), z.strictObject({weight: z.number()})).optional(),
  either: z.union([z.string(), z.strictObject({name: z.string()})]).optional(),
})

const WORDING: IssueWording = {
  unknownKey: (key, known, guess) => ({message: `unknown ${key} (${known.join('/')})`, ...(guess === undefined ? {} : {suggestion: guess})}),
  issue: (issue, input) => ({message: `${issue.code}: ${String(input)}`}),
}

function problemsOf(text: string) {
  const yaml = parseConfigYaml(text, 'f.yaml')
  expect(yaml.problems).toEqual([])
  const parsed = Schema.safeParse(yaml.value, {reportInput: true})
  return schemaProblems(parsed.success ? [] : parsed.error.issues, Schema, yaml, WORDING)
}

describe('config-problems', () => {
  it('knows the keys through prefault, optional, lists, records and a union member', () => {
    expect(knownKeys(Schema, [])).toEqual(['top', 'list', 'map', 'either'])
    expect(knownKeys(Schema, ['top'])).toEqual(['inner', 'other'])
    expect(knownKeys(Schema, ['list', 0])).toEqual(['name'])
    expect(knownKeys(Schema, ['map', 'any'])).toEqual(['weight'])
    expect(knownKeys(Schema, ['either'])).toEqual(['name'])
    expect(knownKeys(Schema, ['top', 'inner'])).toEqual([])
  })

  it('locates an unknown key at the key and a bad value at the value, each with its path', () => {
    expect(problemsOf('top:\n  innr: x\nmap:\n  a: {weight: heavy}\n')).toEqual([
      {location: {file: 'f.yaml', line: 2, column: 3}, path: 'top.innr', message: 'unknown innr (inner/other)', suggestion: 'inner'},
      {location: {file: 'f.yaml', line: 4, column: 15}, path: 'map.a.weight', message: 'invalid_type: heavy'},
    ])
  })

  it('lists the first 100 unknown keys of one mapping, not a million', () => {
    const text = `top:\n${Array.from({length: 150}, (_, i) => `  k${i}: 1\n`).join('')}`
    expect(problemsOf(text)).toHaveLength(100)
  })

  it('sorts problems by line, column, then path', () => {
    const at = (line: number, column: number, path: string) => ({location: {file: 'f', line, column}, path, message: ''})
    expect(sortProblems([at(3, 1, 'b'), at(1, 5, 'a'), at(1, 2, 'z'), at(1, 2, 'c')]).map((p) => p.path)).toEqual(['c', 'z', 'a', 'b'])
  })
})
