// Hostile and unusual proxy configs (test/helpers/hostile-yaml.ts) through loadProxyConfig, through
// the built CLI (`canary proxy --config` exits 3 before listening) and through the admin reload
// endpoint of a running `canary proxy` process (400 with the located problems; the previous config
// keeps serving). Accepted cases are checked with `--check`.
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ConfigError, type ConfigProblem} from '../../src/errors.js'
import {loadProxyConfig, parseProxyConfig} from '../../src/proxy/config.js'
import {HOSTILE_CASES, SPECIAL_FILES, writeCase, type ValidDocument} from '../helpers/hostile-yaml.js'
import {canary} from '../helpers/lifecycle.js'
import {get, startUpstream, type Upstream} from './helpers.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')

function validConfig(upstreamUrl: string): ValidDocument {
  const text = `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: r, pathPrefix: /, stripPrefix: false, service: s }
services:
  s:
    versions: [{ name: v1, servers: [${upstreamUrl}] }]
`
  return {text, withBoolean: (value) => text.replace('stripPrefix: false', `stripPrefix: ${value}`)}
}

const CONFIG = validConfig('http://127.0.0.1:9')
const dir = mkdtempSync(join(tmpdir(), 'canary-hostile-proxy-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
let files = 0
const fileWith = (content: string | Buffer): string => {
  const file = join(dir, `proxy-${files++}.yaml`)
  writeCase(file, content)
  return file
}
const matching = (problems: readonly ConfigProblem[], pattern: RegExp) => problems.find((p) => pattern.test(p.message) || pattern.test(p.suggestion ?? ''))

async function refusal(file: string): Promise<ConfigError> {
  const error = await loadProxyConfig(file, {}).then(() => undefined, (e: unknown) => e)
  expect(error, 'expected a ConfigError').toBeInstanceOf(ConfigError)
  return error as ConfigError
}

describe('loadProxyConfig: hostile and unusual YAML', () => {
  for (const c of HOSTILE_CASES) {
    it(`${c.refused === undefined ? 'accepts' : 'refuses'} ${c.name}`, async () => {
      const file = fileWith(c.content(CONFIG))
      if (c.refused === undefined) {
        expect((await loadProxyConfig(file, {})).routes[0]?.name).toBe('r')
        return
      }
      const error = await refusal(file)
      expect(error.exitCode).toBe(3)
      const problem = matching(error.problems, c.refused)
      expect(problem, JSON.stringify(error.problems.slice(0, 3), null, 1)).toBeDefined()
      expect(problem!.location?.file).toBe(file)
      if (c.line !== undefined) expect(problem!.location?.line).toBe(c.line(CONFIG))
      expect(error.problems.length).toBeLessThanOrEqual(101)
    })
  }

  for (const special of SPECIAL_FILES) {
    it(`refuses ${special.name} without reading it`, async () => {
      const file = join(dir, `special-${files++}.yaml`)
      const cleanUp = await special.make(file)
      try {
        const error = await refusal(file)
        expect(error.message).toMatch(special.refused)
        expect(error.problems[0]?.location?.file).toBe(file)
      } finally {
        await cleanUp()
      }
    })
  }

  it('applies merge keys, e.g. versions shared by two services', () => {
    const text = `listen: 127.0.0.1:0
routes:
  - { name: a, pathPrefix: /a, service: a }
  - { name: b, pathPrefix: /b, service: b }
services:
  a: &service
    versions: [{ name: v1, servers: [http://127.0.0.1:9] }]
    healthCheck: { path: /healthz }
  b:
    <<: *service
    healthCheck: { path: /ready }
`
    const config = parseProxyConfig(text, 'p.yaml', {})
    expect(config.services.b?.versions).toEqual(config.services.a?.versions)
    expect(config.services.b?.healthCheck?.path).toBe('/ready')
  })

  it('expands ${VAR} once in an anchored value and its aliases, and locates an unset one', () => {
    const text = `${CONFIG.text}  t:\n    versions: [{ name: v1, servers: [&server "http://\${HOST}:9"] }]\n  u:\n    versions: [{ name: v1, servers: [*server] }]\n`
    expect(parseProxyConfig(text, 'p.yaml', {HOST: '127.0.0.2'}).services.u?.versions[0]?.servers).toEqual(['http://127.0.0.2:9'])
    const error = (() => {
      try {
        parseProxyConfig(text, 'p.yaml', {})
      } catch (e) {
        return e as ConfigError
      }
      throw new Error('expected a ConfigError')
    })()
    expect(error.problems[0]).toMatchObject({message: 'environment variable HOST is not set', location: {line: 9}})
  })
})

describe('canary proxy --config (built CLI)', () => {
  describe.concurrent('a hostile config', () => {
    for (const c of HOSTILE_CASES) {
      it(`${c.refused === undefined ? 'passes --check with' : 'exits 3 before listening for'} ${c.name}`, {timeout: 120_000}, async () => {
        const file = fileWith(c.content(CONFIG))
        const run = await canary(['proxy', '--config', file, ...(c.refused === undefined ? ['--check'] : [])], dir)
        if (c.refused === undefined) {
          expect(run.code, run.stderr).toBe(0)
          return
        }
        expect(run.code, run.stderr).toBe(3)
        expect(run.stdout).not.toContain('"listening"')
        expect(run.stderr).toMatch(c.refused)
        expect(run.stderr).toContain(`Error [E_CONFIG]: proxy config ${file}`)
        if (c.line !== undefined) expect(run.stderr).toContain(`${file}:${c.line(CONFIG)}:`)
        expect(run.stderr.length).toBeLessThan(40_000)
      })
    }
    for (const special of SPECIAL_FILES) {
      it(`exits 3 before listening for ${special.name}`, {timeout: 120_000}, async () => {
        const file = join(dir, `special-cli-${files++}.yaml`)
        const cleanUp = await special.make(file)
        try {
          const run = await canary(['proxy', '--config', file], dir)
          expect(run.code, run.stderr).toBe(3)
          expect(run.stderr).toMatch(special.refused)
        } finally {
          await cleanUp()
        }
      })
    }
  })
})

describe('POST /api/reload of a running `canary proxy` with a hostile config', () => {
  let child: ChildProcess
  let upstream: Upstream
  let file: string
  let proxyUrl: string
  let adminUrl: string
  let config: ValidDocument

  beforeAll(async () => {
    upstream = await startUpstream('v1')
    config = validConfig(upstream.url)
    file = fileWith(config.text)
    child = spawn(process.execPath, [BIN, 'proxy', '--config', file], {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const listening = await new Promise<{listen: string; admin: string}>((resolveLine, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
        const line = stdout.split('\n').find((l) => l.includes('"listening"'))
        if (line !== undefined) resolveLine(JSON.parse(line) as {listen: string; admin: string})
      })
      child.once('exit', (code) => reject(new Error(`canary proxy exited ${code}: ${stderr}`)))
    })
    proxyUrl = `http://${listening.listen}`
    adminUrl = `http://${listening.admin}`
  }, 120_000)

  afterAll(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    await upstream.close()
  })

  const reload = async () => {
    const response = await fetch(`${adminUrl}/api/reload`, {method: 'POST', signal: AbortSignal.timeout(30_000)})
    return {status: response.status, body: (await response.json()) as {error?: string; generation?: number; problems?: ConfigProblem[]}}
  }
  const state = async () => (await (await fetch(`${adminUrl}/api/state`)).json()) as {generation: number; reloads: {success: number; failure: number}}

  for (const c of HOSTILE_CASES.filter((x) => x.refused !== undefined)) {
    it(`answers 400 for ${c.name}, and the previous config keeps serving`, {timeout: 60_000}, async () => {
      writeCase(file, c.content(config))
      const {status, body} = await reload()
      expect(status, JSON.stringify(body).slice(0, 500)).toBe(400)
      const problem = matching(body.problems ?? [], c.refused!)
      expect(problem, JSON.stringify(body).slice(0, 500)).toBeDefined()
      if (c.line !== undefined) expect(problem!.location).toMatchObject({file, line: c.line(config)})
      expect(await get(`${proxyUrl}/`)).toMatchObject({status: 200, text: 'v1'})
    })
  }

  for (const special of SPECIAL_FILES) {
    it(`answers 400 for ${special.name} instead of waiting on it`, {timeout: 60_000}, async () => {
      rmSync(file, {recursive: true, force: true})
      const cleanUp = await special.make(file)
      try {
        const {status, body} = await reload()
        expect(status).toBe(400)
        expect(body.error).toMatch(special.refused)
      } finally {
        await cleanUp()
      }
      expect(await get(`${proxyUrl}/`)).toMatchObject({status: 200, text: 'v1'})
    })
  }

  it('applied none of them (the file watcher reloads too, so at least one refusal each), then reloads a valid file', {timeout: 60_000}, async () => {
    const before = await state()
    expect(before.generation).toBe(1)
    expect(before.reloads.success).toBe(0)
    expect(before.reloads.failure).toBeGreaterThanOrEqual(HOSTILE_CASES.filter((x) => x.refused !== undefined).length + SPECIAL_FILES.length)
    writeCase(file, `\ufeff${config.text}`)
    const {status, body} = await reload()
    expect(status).toBe(200)
    expect(body.generation).toBeGreaterThanOrEqual(2)
  })
})
