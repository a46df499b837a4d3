// End-to-end: the release spec (`canary validate`) and the proxy config (`canary proxy --config`)
// report the same kind of mistake through the same code: real files on disk, the built CLI
// (`npm run build` first; `npm test` does it), exit code 3 and the --json problem.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it, vi} from 'vitest'

import type {ConfigProblem} from '../../src/errors.js'
import {canary} from '../helpers/lifecycle.js'

// Each run starts Node and oclif (~0.3 s idle, several seconds on a busy machine).
vi.setConfig({testTimeout: 120_000})

const dir = mkdtempSync(join(tmpdir(), 'canary-same-problems-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** `^` marks where the problem must be reported; it is removed from the file. */
const MARK = '^'

function release(spec: string, tail = ''): string {
  return `apiVersion: canary.dev/v1alpha1
kind: Release
metadata: {name: shop}
spec:
  image: ghcr.io/acme/shop:v1
  port: 8080
  steps: [50, 100]
  local:
    upstreams: {v1: ['http://127.0.0.1:9001'], v2: ['http://127.0.0.1:9002']}
${spec}${tail}`
}

function proxy(top: string, tail = ''): string {
  return `listen: 127.0.0.1:0
routes: [{name: r, service: s}]
services:
  s:
    versions:
      - {name: v1, servers: ['http://127.0.0.1:9001']}
${top}${tail}`
}

/** Writes `text` (without its mark) as `name` and returns where the mark was. */
function write(name: string, text: string): {line: number; column: number} {
  const offset = text.indexOf(MARK)
  expect(offset, `${name} has a ${MARK} mark`).toBeGreaterThanOrEqual(0)
  writeFileSync(join(dir, name), text.slice(0, offset) + text.slice(offset + 1))
  const before = text.slice(0, offset).split('\n')
  return {line: before.length, column: (before.at(-1)?.length ?? 0) + 1}
}

interface Reported {
  readonly problem: ConfigProblem
  readonly at: {line: number; column: number}
  readonly file: string
}

/** The one problem `command` reports for `file`, after checking the exit code and the error's shape. */
async function onlyProblem(file: string, text: string, args: readonly string[]): Promise<Reported> {
  const at = write(file, text)
  const run = await canary([...args, '--json'], dir)
  expect(run.code, run.stdout + run.stderr).toBe(3)
  const error = run.json?.['error'] as {code: string; exitCode: number; problems: ConfigProblem[]}
  expect(error).toMatchObject({code: 'E_CONFIG', exitCode: 3})
  expect(error.problems, JSON.stringify(error.problems)).toHaveLength(1)
  return {problem: error.problems[0]!, at, file}
}

async function both(releaseText: string, proxyText: string): Promise<[Reported, Reported]> {
  const name = `case-${Math.random().toString(36).slice(2)}`
  return Promise.all([
    onlyProblem(`${name}-release.yaml`, releaseText, ['validate', '-f', `${name}-release.yaml`]),
    onlyProblem(`${name}-proxy.yaml`, proxyText, ['proxy', '--config', `${name}-proxy.yaml`, '--check']),
  ])
}

/** Located at the mark, in the file as named on the command line. */
function expectLocatedAtMark(...reports: Reported[]): void {
  for (const {problem, at, file} of reports) expect(problem.location).toEqual({file, ...at})
}

describe('the release spec and the proxy config report a mistake the same way', () => {
  it('an unknown key: at the key, its path, and the closest known key', async () => {
    const [spec, config] = await both(release(`  ${MARK}replcias: 2\n`), proxy(`${MARK}trustedProxyHosp: 1\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem).toMatchObject({path: 'spec.replcias', suggestion: 'did you mean "replicas"?'})
    expect(config.problem).toMatchObject({path: 'trustedProxyHosp', suggestion: 'Did you mean "trustedProxyHops"?'})
  })

  it('an unknown key nested in a section, with two letters swapped twice: both guess it (one did-you-mean)', async () => {
    // Two swaps are two edits when a swap counts as one, four otherwise: over the limit of 2 for a short key.
    const [spec, config] = await both(release(`  analysis:\n    ${MARK}intrevla: 1m\n`), proxy(`timeouts:\n  ${MARK}darinsM: 5\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem).toMatchObject({path: 'spec.analysis.intrevla', suggestion: 'did you mean "interval"?'})
    expect(config.problem).toMatchObject({path: 'timeouts.darinsM', suggestion: 'Did you mean "drainMs"?'})
  })

  it('a top-level key with two swaps, the one the proxy config did not guess before', async () => {
    const [spec, config] = await both(release(`  ${MARK}psraed: true\n`), proxy(`${MARK}damni: {listen: 127.0.0.1:0}\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem.suggestion).toBe('did you mean "spread"?')
    expect(config.problem.suggestion).toBe('Did you mean "admin"?')
  })

  it('an unknown key with no close match: no guess, the known keys are named', async () => {
    const [spec, config] = await both(release(`  ${MARK}zzzzzzzz: 1\n`), proxy(`${MARK}zzzzzzzz: 1\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem.suggestion).toBeUndefined()
    expect(spec.problem.message).toMatch(/^unknown field "zzzzzzzz": expected one of image, replicas, /)
    expect(config.problem.suggestion).toMatch(/^Known fields here: listen, admin, /)
  })

  it('a wrong type: at the value, with what was expected', async () => {
    const [spec, config] = await both(release(`  replicas: ${MARK}many\n`), proxy(`trustedProxyHops: ${MARK}many\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem).toMatchObject({path: 'spec.replicas', message: expect.stringMatching(/^expected a whole number of replicas, got string "many"$/)})
    expect(config.problem).toMatchObject({path: 'trustedProxyHops', message: 'Invalid input: expected number, received string', suggestion: 'See docs/proxy.md for the field.'})
  })

  it('a YAML 1.1 boolean in a boolean field: the same hint', async () => {
    const [spec, config] = await both(release(`  spread: ${MARK}yes\n`), proxy(`admin: {listen: 127.0.0.1:0, metricsAuth: ${MARK}on}\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem.suggestion).toBe('YAML 1.2 reads yes as a string: write true or false')
    expect(config.problem.suggestion).toBe('YAML 1.2 reads on as a string: write true or false.')
  })

  it('a duplicate key: the same message at the second one', async () => {
    const [spec, config] = await both(release(`  ${MARK}port: 8081\n`), proxy(`${MARK}listen: 127.0.0.1:1\n`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem.message.replace('port', 'KEY')).toBe(config.problem.message.replace('listen', 'KEY'))
    expect(spec.problem.message).toMatch(/port/)
    expect(spec.problem.suggestion).toBe(config.problem.suggestion)
  })

  it('a YAML syntax error (an unclosed list, found at the end of the file): the same message', async () => {
    const [spec, config] = await both(release('', `broken: [1, 2\n${MARK}`), proxy('', `broken: [1, 2\n${MARK}`))
    expectLocatedAtMark(spec, config)
    expect(spec.problem).toMatchObject({path: '', message: expect.stringMatching(/^YAML syntax error: /)})
    expect({...spec.problem, location: undefined}).toEqual({...config.problem, location: undefined})
  })

  it('an unsupported tag and an alias without an anchor: the same message', async () => {
    // A tagged value is located after its tag, an alias at its `*`.
    for (const value of [`!!binary ${MARK}aGVsbG8=`, `${MARK}*nowhere`]) {
      const [spec, config] = await both(release(`  env: {A: ${value}}\n`), proxy(`accessLog: {path: ${value}}\n`))
      expectLocatedAtMark(spec, config)
      expect(spec.problem.message).toBe(config.problem.message)
      expect(spec.problem.suggestion).toBe(config.problem.suggestion)
    }
  })
})
