import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {parseRelease, routerProblemsFor} from '../../src/release/load-release.js'
import type {RouterKind} from '../../src/release/release.js'

const EXAMPLE = readFileSync(join(import.meta.dirname, '../../examples/my-app.yaml'), 'utf8')

/** The example with router proxy (which can do everything), edited by `edits`. */
function specWith(...edits: Array<[string, string]>): string {
  let text = EXAMPLE.replace('router: nginx ', 'router: proxy ')
  for (const [from, to] of edits) {
    expect(text).toContain(from)
    text = text.replace(from, to)
  }
  return text
}

function problems(text: string): Array<{at: string; path: string; message: string}> {
  try {
    parseRelease(text, 'r.yaml')
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    return error.problems.map((p) => ({at: `${p.location?.line}:${p.location?.column}`, path: p.path, message: p.message}))
  }
  return []
}

// The router features are taken from the spec once, when it is read: the spec's own router is
// checked then, and `canary validate --router X` (routerProblemsFor) checks another router with the
// same features, at the same places.
describe('release rules: what a router can do, for the spec\'s router and for --router', () => {
  const cases: Array<[RouterKind, string, Array<[string, string]>, string, RegExp]> = [
    ['traefik', 'a backtick in a header value', [['value: always }', 'value: "a`b" }']], 'spec.match.header', /backtick/],
    ['traefik-file', 'double braces in a header pattern', [['value: always }', 'pattern: "a{{2}}" }']], 'spec.match.header', /Go template/],
    ['nginx', 'a total below 100 that does not divide it', [['steps:', 'totalWeight: 30\n  steps:'], ['setWeight: 20', 'setWeight: 10'], ['setWeight: 50', 'setWeight: 20'], ['setWeight: 100', 'setWeight: 30']], 'spec.totalWeight', /ingress-nginx ignores canary-weight-total below 100/],
    ['traefik-v1', 'a weight that is not a percentage with 3 decimals', [['steps:', 'totalWeight: 3\n  steps:'], ['setWeight: 20', 'setWeight: 1'], ['setWeight: 50', 'setWeight: 2'], ['setWeight: 100', 'setWeight: 3']], 'spec.totalWeight', /at most 3 decimals/],
  ]
  it.each(cases)('%s refuses %s, named in the spec or given with --router', (router, _what, edits, path, message) => {
    const text = specWith(...edits)
    const loaded = parseRelease(text, 'r.yaml')
    const viaFlag = routerProblemsFor(loaded, router).filter((p) => p.path === path)
    expect(viaFlag).toEqual([expect.objectContaining({path, message: expect.stringMatching(message)})])
    const inSpec = problems(text.replace('router: proxy ', `router: ${router} `)).filter((p) => p.path === path)
    expect(inSpec).toEqual([{at: `${viaFlag[0]!.location?.line}:${viaFlag[0]!.location?.column}`, path, message: viaFlag[0]!.message}])
  })

  it('finds nothing for the spec\'s own router when it can do everything', () => {
    expect(routerProblemsFor(parseRelease(specWith(), 'r.yaml'), 'proxy')).toEqual([])
  })
})
