import {ESLint} from 'eslint'
import {describe, expect, it} from 'vitest'

// src/rollout/core is a pure reducer. The lint rule is the guard; this test
// proves the guard fires (a rule that silently stopped matching would let I/O creep in).
async function lintAs(filePath: string, code: string): Promise<string[]> {
  const eslint = new ESLint({cwd: process.cwd()})
  const [result] = await eslint.lintText(code, {filePath})
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`)
}

describe('the rollout core purity rule', () => {
  it('rejects node built-ins, HTTP clients and frameworks inside src/rollout/core', async () => {
    for (const source of ["import {request} from 'node:http'", "import {Pool} from 'undici'", "import {Command} from '@oclif/core'", "import * as k8s from '@kubernetes/client-node'", "import {Registry} from 'prom-client'"]) {
      const messages = await lintAs('src/rollout/core/example.ts', `${source}\nexport const used = typeof globalThis\n`)
      expect(messages.some((m) => m.startsWith('no-restricted-imports')), source).toBe(true)
    }
  })

  it('rejects reaching out of the core and reading the wall clock', async () => {
    const outward = await lintAs('src/rollout/core/example.ts', "import {ExitCode} from '../../errors.js'\nexport const x = ExitCode\n")
    expect(outward.some((m) => m.startsWith('no-restricted-imports'))).toBe(true)
    const clock = await lintAs('src/rollout/core/example.ts', 'export const now = Date.now()\n')
    expect(clock.some((m) => m.startsWith('no-restricted-globals'))).toBe(true)
  })

  it('allows the same imports outside the core', async () => {
    const messages = await lintAs('src/proxy/example.ts', "import {request} from 'node:http'\nexport const x = request\n")
    expect(messages.filter((m) => m.startsWith('no-restricted-imports'))).toEqual([])
  })
})
