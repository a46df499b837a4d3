import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError, ConflictError} from '../../src/errors.js'
import {FileRolloutStore, STATE_FORMAT} from '../../src/local/file-store.js'
import {acquireLockFile} from '../../src/local/lock-file.js'

const signal = new AbortController().signal
let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canary-store-'))
})

afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

describe('the file rollout store', () => {
  it('round-trips state and advances the revision on every save', async () => {
    const store = new FileRolloutStore<{n: number}>(join(dir, 'state.json'), 'release shop')
    expect(await store.load()).toBeUndefined()
    const first = await store.save({n: 1}, undefined, signal)
    const second = await store.save({n: 2}, first.version, signal)
    expect(second.version).not.toBe(first.version)
    expect(await store.load()).toEqual({value: {n: 2}, version: second.version})
    expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'))).toMatchObject({format: STATE_FORMAT, revision: 2})
  })

  it('refuses a save based on a stale version and keeps the newer state', async () => {
    const store = new FileRolloutStore<{n: number}>(join(dir, 'state.json'), 'release shop')
    const first = await store.save({n: 1}, undefined, signal)
    await store.save({n: 2}, first.version, signal)
    await expect(store.save({n: 3}, first.version, signal)).rejects.toBeInstanceOf(ConflictError)
    expect((await store.load())?.value).toEqual({n: 2})
  })

  it.each([
    ['a corrupt file', '{"format": "canary.rollout/v1", "revis', /corrupt: not valid JSON/],
    ['a file from another format version', JSON.stringify({format: 'canary.rollout/v0', revision: 3, state: {}}), /another version of canary \(format "canary.rollout\/v0"/],
  ])('reports %s by name and never overwrites it', async (_name, content, message) => {
    const file = join(dir, 'state.json')
    await writeFile(file, content)
    const store = new FileRolloutStore<{n: number}>(file, 'release shop')
    const error = await store.load().then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as Error).message).toMatch(message)
    expect((error as Error).message).toContain(file)
    await expect(store.save({n: 1}, undefined, signal)).rejects.toBeInstanceOf(ConfigError)
    expect(await readFile(file, 'utf8')).toBe(content)
  })
})

describe('the lock file', () => {
  it('lets one operation in and refuses the next with a conflict naming the holder', async () => {
    const file = join(dir, 'operation.lock')
    const release = await acquireLockFile(file, {waitMs: 0, operation: 'step', subject: 'release shop', signal})
    const error = await acquireLockFile(file, {waitMs: 0, operation: 'step', subject: 'release shop', signal}).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ConflictError)
    expect((error as Error).message).toMatch(new RegExp(`another operation is in progress \\(step, pid ${process.pid}\\)`))
    await release()
    const again = await acquireLockFile(file, {waitMs: 0, operation: 'step', subject: 'release shop', signal})
    await again()
  })

  it('takes over a lock whose owner died (kill -9)', async () => {
    const file = join(dir, 'operation.lock')
    // Pid 2^22 + 1 is above Linux's default pid_max, so no process has it.
    await writeFile(file, JSON.stringify({pid: 4_194_305, operation: 'run', sinceMs: 0}))
    const release = await acquireLockFile(file, {waitMs: 0, operation: 'step', subject: 'release shop', signal})
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({pid: process.pid, operation: 'step'})
    await release()
  })
})
