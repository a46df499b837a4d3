// How the built CLI starts: the bundle's command table matches the commands, and the V8 code
// cache (src/cli/code-cache.ts) is written, used, survives corruption and can be turned off —
// checked through the real bin/run.js as a child process.
import {existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'

import {describe, expect, it, vi} from 'vitest'

import {COMMANDS} from '../../src/cli/commands.js'
import {codeCachePath, requireWithCodeCache} from '../../src/cli/code-cache.js'
import {canary, REPO} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 120_000})

const BUNDLE = join(REPO, 'dist/cli/canary.cjs')

function cacheFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const entry of readdirSync(d, {withFileTypes: true})) {
      if (entry.isDirectory()) walk(join(d, entry.name))
      else out.push(join(d, entry.name))
    }
  }
  if (existsSync(dir)) walk(dir)
  return out
}

describe('the command table of the bundle', () => {
  it('lists every file in src/commands, and the shipped manifest lists the same ids', () => {
    const files = readdirSync(join(REPO, 'src/commands')).filter((f) => f.endsWith('.ts')).map((f) => basename(f, '.ts')).sort()
    expect(Object.keys(COMMANDS).sort()).toEqual(files)
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    expect(Object.keys(manifest.commands).sort()).toEqual(files)
  })

  it('runs each command from the bundle (--help through the built CLI)', async () => {
    const env = {CANARY_CODE_CACHE: '0'}
    for (const id of Object.keys(COMMANDS)) {
      const run = await canary([id, '--help'], REPO, env)
      expect(run.code, `${id} --help: ${run.stderr}`).toBe(0)
      expect(run.stdout).toContain(`canary ${id}`)
    }
  })
})

describe('the V8 code cache of the built CLI', () => {
  it('is written by the first run, used by the next, keyed by command, and borrowed by a command\'s first run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-code-cache-'))
    const env = {CANARY_CODE_CACHE_DIR: dir, CANARY_CODE_CACHE_DEBUG: '1'}
    const first = await canary(['validate', '--help'], REPO, env)
    expect(first.code).toBe(0)
    expect(first.stderr).toContain('code cache missing')
    const files = cacheFiles(dir)
    expect(files).toHaveLength(1)
    expect(basename(files[0] ?? '')).toMatch(/^\d+-\d+-validate\.bin$/)
    expect(statSync(files[0] ?? '').mode & 0o077).toBe(0)

    const second = await canary(['validate', '--help'], REPO, env)
    expect(second.code).toBe(0)
    expect(second.stderr).toContain('code cache used')
    expect(second.stdout).toBe(first.stdout)

    // Another command's first run borrows that file, then writes its own.
    const other = await canary(['--version'], REPO, env)
    expect(other.stderr).toContain('code cache borrowed')
    expect(cacheFiles(dir).map((f) => basename(f).replace(/^\d+-\d+-/, '')).sort()).toEqual(['other.bin', 'validate.bin'])
  })

  it('falls back to a normal compile when the cache file is garbage, and replaces it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-code-cache-'))
    const env = {CANARY_CODE_CACHE_DIR: dir, CANARY_CODE_CACHE_DEBUG: '1'}
    expect((await canary(['--version'], REPO, env)).code).toBe(0)
    const [file] = cacheFiles(dir)
    if (file === undefined) throw new Error('no cache file written')
    writeFileSync(file, Buffer.alloc(4096, 7))
    const run = await canary(['--version'], REPO, env)
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^canary\/\d+\.\d+\.\d+ /)
    expect(run.stderr).toContain('code cache rejected')
    expect(readFileSync(file).equals(Buffer.alloc(4096, 7))).toBe(false)
    expect((await canary(['--version'], REPO, env)).stderr).toContain('code cache used')
  })

  it('removes the files of earlier builds when it writes one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-code-cache-'))
    const env = {CANARY_CODE_CACHE_DIR: dir}
    const current = codeCachePath(BUNDLE, 'other', env)
    if (current === undefined) throw new Error('caching is off')
    const stale = join(current, '..', '1-2-other.bin')
    const {mkdirSync} = await import('node:fs')
    mkdirSync(join(current, '..'), {recursive: true})
    writeFileSync(stale, 'old build')
    expect((await canary(['--version'], REPO, env)).code).toBe(0)
    expect(existsSync(stale)).toBe(false)
    expect(existsSync(current)).toBe(true)
  })

  it('is off with CANARY_CODE_CACHE=0, and an unwritable cache directory changes nothing but speed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-code-cache-'))
    const off = await canary(['--version'], REPO, {CANARY_CODE_CACHE: '0', CANARY_CODE_CACHE_DIR: dir, CANARY_CODE_CACHE_DEBUG: '1'})
    expect(off.code).toBe(0)
    expect(off.stderr).toContain('code cache disabled')
    expect(cacheFiles(dir)).toEqual([])

    const notADir = join(dir, 'a-file')
    writeFileSync(notADir, '')
    const blocked = await canary(['--version'], REPO, {CANARY_CODE_CACHE_DIR: notADir})
    expect(blocked.code).toBe(0)
    expect(blocked.stderr).toBe('')
  })
})

describe('requireWithCodeCache', () => {
  it('puts the module in Node\'s require cache, so require() of the same file returns the same instance', () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-code-cache-'))
    const file = join(dir, 'counter.cjs')
    writeFileSync(file, 'let n = 0; module.exports = {next: () => ++n, dir: __dirname}')
    const {exports, outcome} = requireWithCodeCache(file, undefined)
    expect(outcome).toBe('disabled')
    const again = createRequire(file)(file) as {next(): number; dir: string}
    expect(again).toBe(exports)
    expect(again.next()).toBe(1)
    expect((exports as {next(): number}).next()).toBe(2)
    expect(again.dir).toBe(dir)
  })

  it('keys the cache file by the file\'s size and mtime, so a rebuilt bundle never gets a stale cache', () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-code-cache-'))
    const file = join(dir, 'bundle.cjs')
    writeFileSync(file, 'module.exports = 1')
    const env = {CANARY_CODE_CACHE_DIR: join(dir, 'cache')}
    const before = codeCachePath(file, 'step', env)
    writeFileSync(file, 'module.exports = 22')
    expect(codeCachePath(file, 'step', env)).not.toBe(before)
    expect(codeCachePath(file, '--weight', env)).toMatch(/-other\.bin$/)
    expect(codeCachePath(file, 'step', {CANARY_CODE_CACHE: '0'})).toBeUndefined()
    expect(codeCachePath(file, 'step', {})).toBeUndefined()
    expect(codeCachePath(file, 'step', {HOME: '/home/u'})).toMatch(/^\/home\/u\/\.cache\/canary\/code-cache\//)
  })
})
