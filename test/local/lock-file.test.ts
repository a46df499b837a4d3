// The operation lock: exclusive across processes (tens of real processes racing, on a free lock
// and on a stale one), taken over from a dead owner, a zombie or a reused pid, never from a live
// one, and never removed when it is not canary's own record.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtemp, readdir, readFile, rm, utimes, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {build} from 'esbuild'
import {afterAll, beforeAll, beforeEach, afterEach, describe, expect, it, vi} from 'vitest'

import {ConfigError, ConflictError, ExitCode} from '../../src/errors.js'
import {acquireLockFile} from '../../src/local/lock-file.js'
import {processIdentity} from '../../src/local/processes.js'
import {REPO} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

const signal = new AbortController().signal
/** Above Linux's default pid_max, so no process has it. */
const DEAD_PID = 4_194_305
let dir: string
let lock: string
let contender: string
let buildDir: string

beforeAll(async () => {
  // The contender runs as plain node processes: bundled (self-contained) once here, so twenty of them start fast.
  buildDir = await mkdtemp(join(tmpdir(), 'canary-lock-contender-'))
  contender = join(buildDir, 'lock-contender.mjs')
  await build({entryPoints: [join(REPO, 'test/local/lock-contender.ts')], bundle: true, platform: 'node', format: 'esm', outfile: contender, logLevel: 'warning'})
})

afterAll(async () => {
  await rm(buildDir, {recursive: true, force: true})
})

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canary-lock-'))
  lock = join(dir, 'operation.lock')
})

afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const take = (waitMs = 0, operation = 'step') => acquireLockFile(lock, {waitMs, operation, subject: 'release shop', signal})
const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e)
const record = (fields: Record<string, unknown>) => JSON.stringify({id: 'a'.repeat(32), operation: 'run', sinceMs: 0, ...fields})

/** Runs `count` contender processes that start at the same moment; resolves with the race log. */
async function race(count: number, rounds: number, mode: (index: number) => string | undefined = () => undefined): Promise<string[]> {
  const marker = join(dir, 'inside')
  const log = join(dir, 'race.log')
  await writeFile(log, '')
  const children = Array.from({length: count}, (_, index) => spawn(process.execPath, [contender, lock, marker, log, String(rounds), ...(mode(index) === undefined ? [] : [mode(index)!])], {cwd: REPO, stdio: ['pipe', 'pipe', 'inherit']}))
  await Promise.all(children.map((child) => once(child.stdout!, 'data')))
  for (const child of children) child.stdin!.write('go\n')
  const codes = await Promise.all(children.map(async (child) => (await once(child, 'exit'))[0] as number | null))
  expect(codes.every((code) => code === 0)).toBe(true)
  return (await readFile(log, 'utf8')).split('\n').filter((line) => line !== '')
}

describe('the operation lock', () => {
  it('lets one operation in and refuses the next with a conflict naming the holder', async () => {
    const release = await take()
    const error = await failure(take())
    expect(error).toBeInstanceOf(ConflictError)
    expect((error as Error).message).toMatch(new RegExp(`another operation is in progress \\(step, pid ${process.pid}\\)`))
    await release()
    await (await take())()
    expect(await readdir(dir)).toEqual([])
  })

  it('writes the whole owner record before the lock exists: pid, identity, operation', async () => {
    const release = await take(0, 'promote')
    const owner = JSON.parse(await readFile(lock, 'utf8')) as Record<string, unknown>
    expect(owner).toMatchObject({pid: process.pid, operation: 'promote'})
    expect(owner['id']).toMatch(/^[0-9a-f]{32}$/)
    if (process.platform === 'linux') expect(owner['identity']).toBe(processIdentity(process.pid))
    await release()
  })

  it.each([
    ['a dead owner (kill -9)', () => record({pid: DEAD_PID})],
    ['a lock of an older canary without id or identity', () => JSON.stringify({pid: DEAD_PID, operation: 'run', sinceMs: 0})],
    ['an owner whose pid now belongs to another process', () => record({pid: process.pid, identity: 'another-boot/12345'})],
  ])('takes over the lock of %s', async (_name, content) => {
    await writeFile(lock, content())
    const release = await take()
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({pid: process.pid, operation: 'step'})
    await release()
    expect(await readdir(dir)).toEqual([])
  })

  it.runIf(process.platform === 'linux')('takes over the lock of a zombie owner (exited, not reaped)', async () => {
    const child = spawn('/bin/sh', ['-c', '(sleep 0.3; exit 0) & echo $!; exec sleep 30'], {detached: true, stdio: ['ignore', 'pipe', 'ignore']})
    try {
      const zombie = Number(((await once(child.stdout!, 'data')) as [Buffer])[0].toString().trim())
      await writeFile(lock, record({pid: zombie}))
      const release = await take(10_000)
      expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({pid: process.pid})
      await release()
    } finally {
      process.kill(-child.pid!, 'SIGKILL')
    }
  })

  it('does not take over a live owner with its identity', async () => {
    const child = spawn('sleep', ['30'], {stdio: 'ignore'})
    try {
      await once(child, 'spawn')
      await writeFile(lock, record({pid: child.pid, identity: processIdentity(child.pid!)}))
      const error = await failure(take(100))
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as Error).message).toContain(`pid ${child.pid}`)
      expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({pid: child.pid})
    } finally {
      child.kill('SIGKILL')
    }
  })

  it.each([
    ['empty', ''],
    ['half written', '{"pid": 12'],
    ['not an owner record', JSON.stringify({pid: 'me'})],
  ])('treats a fresh %s lock file as being written (held), and refuses it with exit 3 once it is old, never removing it', async (_name, content) => {
    await writeFile(lock, content)
    const busy = await failure(take())
    expect(busy).toBeInstanceOf(ConflictError)
    expect((busy as Error).message).toMatch(/is being written/)
    const old = new Date(Date.now() - 60_000)
    await utimes(lock, old, old)
    const refused = await failure(take())
    expect(refused).toBeInstanceOf(ConfigError)
    expect((refused as ConfigError).exitCode).toBe(ExitCode.Config)
    expect((refused as Error).message).toContain(lock)
    expect(await readFile(lock, 'utf8')).toBe(content)
  })

  it('supersedes a claimer that died halfway through a takeover, and cleans up the claims', async () => {
    const staleId = 'b'.repeat(32)
    await writeFile(lock, record({pid: DEAD_PID, id: staleId}))
    await writeFile(`${lock}.claim-${staleId}`, record({pid: DEAD_PID + 1, id: 'c'.repeat(32)}))
    const release = await take()
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({pid: process.pid})
    await release()
    expect(await readdir(dir)).toEqual([])
  })

  it('waits while a live contender holds the claim on a stale lock', async () => {
    const staleId = 'b'.repeat(32)
    await writeFile(lock, record({pid: DEAD_PID, id: staleId}))
    await writeFile(`${lock}.claim-${staleId}`, record({pid: process.pid, id: 'c'.repeat(32), identity: processIdentity(process.pid)}))
    expect(await failure(take(100))).toBeInstanceOf(ConflictError)
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({pid: DEAD_PID})
  })

  it('is exclusive among 20 processes racing for a free lock, three rounds each', async () => {
    const log = await race(20, 3)
    expect(log.filter((line) => line.startsWith('VIOLATION'))).toEqual([])
    expect(log.filter((line) => line.startsWith('enter'))).toHaveLength(60)
  })

  it('is exclusive among 20 processes taking over one stale lock at the same moment, and while holders die holding it', async () => {
    for (let round = 0; round < 2; round++) {
      await writeFile(lock, record({pid: DEAD_PID, id: String(round).repeat(32)}))
      // Every third contender exits while holding the lock, as kill -9 would leave it.
      const log = await race(20, 1, (index) => (index % 3 === 0 ? 'die-holding' : undefined))
      expect(log.filter((line) => line.startsWith('VIOLATION'))).toEqual([])
      expect(log.filter((line) => line.startsWith('enter'))).toHaveLength(20)
      await rm(lock, {force: true})
    }
  })
})
