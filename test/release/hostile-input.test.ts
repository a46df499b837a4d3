// Hostile and unusual release specs (test/helpers/hostile-yaml.ts) through loadRelease and through
// the built CLI (`canary validate`, and `canary status`, which reads the spec through its cache):
// each is refused with exit 3 and a located problem, promptly, or accepted where YAML 1.2 allows it.
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {ConfigError, NotFoundError, type ConfigProblem} from '../../src/errors.js'
import {loadRelease, parseRelease} from '../../src/release/load-release.js'
import {HOSTILE_CASES, SPECIAL_FILES, writeCase, type ValidDocument} from '../helpers/hostile-yaml.js'
import {canary} from '../helpers/lifecycle.js'

const EXAMPLE = join(import.meta.dirname, '../../examples/my-app.yaml')
const exampleText = readFileSync(EXAMPLE, 'utf8')
const SPEC: ValidDocument = {
  text: exampleText,
  withBoolean: (value) => exampleText.replace(/spread: true/, `spread: ${value}`),
}

const dir = mkdtempSync(join(tmpdir(), 'canary-hostile-spec-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
let files = 0
const fileWith = (content: string | Buffer): string => {
  const file = join(dir, `spec-${files++}.yaml`)
  writeCase(file, content)
  return file
}

async function refusal(file: string): Promise<ConfigError> {
  const error = await loadRelease(file).then(() => undefined, (e: unknown) => e)
  expect(error, 'expected a ConfigError').toBeInstanceOf(ConfigError)
  return error as ConfigError
}

const matching = (problems: readonly ConfigProblem[], pattern: RegExp) => problems.find((p) => pattern.test(p.message) || pattern.test(p.suggestion ?? ''))

describe('loadRelease: hostile and unusual YAML', () => {
  for (const c of HOSTILE_CASES) {
    it(`${c.refused === undefined ? 'accepts' : 'refuses'} ${c.name}`, async () => {
      const file = fileWith(c.content(SPEC))
      if (c.refused === undefined) {
        expect((await loadRelease(file)).release.name).toBe('my-app')
        return
      }
      const error = await refusal(file)
      expect(error.exitCode).toBe(3)
      const problem = matching(error.problems, c.refused)
      expect(problem, JSON.stringify(error.problems.slice(0, 3), null, 1)).toBeDefined()
      expect(problem!.location?.file).toBe(file)
      if (c.line !== undefined) expect(problem!.location?.line).toBe(c.line(SPEC))
      expect(error.problems.length).toBeLessThanOrEqual(101)
    })
  }
})

describe('loadRelease: files that are not regular files', () => {
  for (const special of SPECIAL_FILES) {
    it(`refuses ${special.name} without reading it`, async () => {
      const file = join(dir, `special-${files++}.yaml`)
      const cleanUp = await special.make(file)
      try {
        const error = await refusal(file)
        expect(error.exitCode).toBe(3)
        expect(error.message).toMatch(special.refused)
        expect(error.problems[0]?.location?.file).toBe(file)
      } finally {
        await cleanUp()
      }
    })
  }

  it('still says "not found" (exit 4) for a missing file', async () => {
    await expect(loadRelease(join(dir, 'missing.yaml'))).rejects.toBeInstanceOf(NotFoundError)
  })
})

describe('parseRelease: YAML 1.2 as written', () => {
  it('reads yes, on, 0777 and 1:20 as YAML 1.2 does (not as 1.1: true, true, 511, 80)', () => {
    const {release} = parseRelease(exampleText.replace('env: { LOG_LEVEL: info }', 'env: { A: yes, B: on, C: 0777, D: 1:20 }'), 'spec.yaml')
    expect(release.env).toEqual({A: 'yes', B: 'on', C: '777', D: '1:20'})
  })

  it('applies merge keys (explicit keys win) and locates fields in the merged mapping', () => {
    const text = exampleText.replace('  analysis:\n', '  analysis:\n    <<: &defaults { interval: 1m, failureLimit: 5 }\n')
    const {release} = parseRelease(text, 'spec.yaml')
    expect(release.analysis).toMatchObject({intervalMs: 30_000, failureLimit: 2})
    const merged = parseRelease(exampleText.replace(/ {4}interval: 30s\n/, '').replace('  analysis:\n', '  analysis:\n    <<: { interval: 1m }\n'), 'spec.yaml')
    expect(merged.release.analysis.intervalMs).toBe(60_000)
  })

  it('keeps "__proto__" an ordinary (unknown) key: no prototype is set', () => {
    const error = (() => {
      try {
        parseRelease(exampleText.replace('spec:\n', 'spec:\n  __proto__: { polluted: true }\n'), 'spec.yaml')
      } catch (e) {
        return e as ConfigError
      }
      throw new Error('expected a ConfigError')
    })()
    expect(error.problems.map((p) => p.path)).toContain('spec.__proto__')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('gives columns of the text after a byte order mark as an editor shows them', () => {
    const error = (() => {
      try {
        parseRelease(`\ufeff${exampleText.replace('apiVersion:', 'apiVerson:')}`, 'spec.yaml')
      } catch (e) {
        return e as ConfigError
      }
      throw new Error('expected a ConfigError')
    })()
    expect(error.problems[0]?.location).toMatchObject({line: 1, column: 1})
  })

  it('shortens a huge value in a message', () => {
    const huge = 'x'.repeat(100_000)
    const error = (() => {
      try {
        parseRelease(exampleText.replace('replicas: 4', `replicas: "${huge}"`), 'spec.yaml')
      } catch (e) {
        return e as ConfigError
      }
      throw new Error('expected a ConfigError')
    })()
    expect(JSON.stringify(error.problems).length).toBeLessThan(2000)
  })
})

describe('the built CLI on hostile specs', () => {
  describe.concurrent('canary validate', () => {
    for (const c of HOSTILE_CASES) {
      it(`${c.refused === undefined ? 'exits 0 for' : 'exits 3 for'} ${c.name}`, {timeout: 120_000}, async () => {
        const file = fileWith(c.content(SPEC))
        const run = await canary(['validate', '-f', file], dir)
        if (c.refused === undefined) {
          expect(run.code, run.stderr).toBe(0)
          return
        }
        expect(run.code, run.stderr).toBe(3)
        expect(run.stderr).toMatch(c.refused)
        expect(run.stderr).toContain(`Error [E_CONFIG]: release spec ${file}`)
        if (c.line !== undefined) expect(run.stderr).toContain(`${file}:${c.line(SPEC)}:`)
        expect(run.stderr.length).toBeLessThan(40_000)
      })
    }
    for (const special of SPECIAL_FILES) {
      it(`exits 3 for ${special.name}`, {timeout: 120_000}, async () => {
        const file = join(dir, `special-cli-${files++}.yaml`)
        const cleanUp = await special.make(file)
        try {
          const run = await canary(['validate', '-f', file], dir)
          expect(run.code, run.stderr).toBe(3)
          expect(run.stderr).toMatch(special.refused)
        } finally {
          await cleanUp()
        }
      })
    }
  })

  it('canary status reads the spec through its cache with the same checks: a FIFO is refused, not waited on', {timeout: 120_000}, async () => {
    const fifo = SPECIAL_FILES[0]!
    const file = join(dir, `status-fifo-${files++}.yaml`)
    const cleanUp = await fifo.make(file)
    try {
      const run = await canary(['status', '-f', file], dir)
      expect(run.code, run.stderr).toBe(3)
      expect(run.stderr).toMatch(fifo.refused)
    } finally {
      await cleanUp()
    }
  })

  it('canary validate --json carries the located problem of an alias bomb', {timeout: 120_000}, async () => {
    const file = fileWith(HOSTILE_CASES[0]!.content(SPEC))
    const run = await canary(['validate', '-f', file, '--json'], dir)
    expect(run.code).toBe(3)
    expect(run.json).toMatchObject({error: {code: 'E_CONFIG', exitCode: 3, problems: [{location: {file, line: HOSTILE_CASES[0]!.line!(SPEC)}, message: expect.stringMatching(/aliases expand/)}]}})
  })
})

// CRLF line ends are ordinary YAML line breaks.
it('loads a spec that was written with CRLF line ends', async () => {
  const file = join(dir, 'crlf.yaml')
  writeFileSync(file, exampleText.replace(/\n/g, '\r\n'))
  expect((await loadRelease(file)).release.name).toBe('my-app')
})
