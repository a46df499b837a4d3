// A real full disk, a read-only file system and a permission denied, on a small tmpfs this test
// mounts (so it needs root, as CI runs; without root it fails saying so, it never skips). A command
// whose state cannot be written exits 7 (E_IO) naming the file and the OS reason, and the world
// stays as the saved state says: same proxy weight, same state file, no temp files left.
import {spawn, spawnSync} from 'node:child_process'
import {closeSync, openSync, writeSync} from 'node:fs'
import {mkdtemp, readFile, readdir, rm, truncate, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'

import {ExitCode, IoError} from '../../src/errors.js'
import {FileRolloutStore} from '../../src/local/file-store.js'
import {acquireLockFile} from '../../src/local/lock-file.js'
import {newRollout} from '../../src/rollout/core/decide.js'
import type {RolloutState} from '../../src/rollout/core/types.js'
import {rolloutStateSchema} from '../../src/rollout/state-schema.js'
import {CLI, aLocalRelease, canary, cleanUp, type CliResult} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 180_000, hookTimeout: 120_000})

const PAGE = 4096
const signal = new AbortController().signal
const mounts: string[] = []

/** A fresh tmpfs of `size` bytes; the reason when it cannot be mounted is the test's failure. */
async function mountTmpfs(size: number): Promise<string> {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs to fill a disk for real and needs root (CI runs as root): run it with sudo')
  const point = await mkdtemp(join(tmpdir(), 'canary-disk-'))
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', point], {encoding: 'utf8'})
  if (mounted.error !== undefined || mounted.status !== 0) throw new Error(`mount -t tmpfs failed (this test needs root and mount(8)): ${mounted.error?.message ?? mounted.stderr}`)
  mounts.push(point)
  return point
}

/**
 * A read-only view of `point` (a read-only bind mount): the daemon keeps its logs open for writing
 * on `point`, which a remount would refuse, while a command run on the view meets EROFS.
 */
async function readOnlyView(point: string): Promise<string> {
  const view = await mkdtemp(join(tmpdir(), 'canary-ro-'))
  for (const args of [['--bind', point, view], ['-o', 'remount,ro,bind', view]]) {
    const result = spawnSync('mount', args, {encoding: 'utf8'})
    if (result.status !== 0) throw new Error(`mount ${args.join(' ')} failed (this test needs root and mount(8)): ${result.stderr}`)
  }
  mounts.unshift(view)
  return view
}

/** Writes `file` until the file system is full. */
function fill(file: string): void {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 120)
  try {
    for (;;) writeSync(fd, chunk)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
  } finally {
    closeSync(fd)
  }
}

afterAll(async () => {
  for (const point of mounts.splice(0)) {
    spawnSync('umount', [point])
    await rm(point, {recursive: true, force: true})
  }
})

describe('the state store on a full disk (real tmpfs)', () => {
  it('fails a save that runs out of space in the middle of the write with E_IO naming the file, keeps the old state and leaves no temp file', async () => {
    const point = await mountTmpfs(256 * 1024)
    const store = new FileRolloutStore<RolloutState>(join(point, 'state.json'), 'release shop', rolloutStateSchema)
    const small = newRollout({name: 'shop', stableImage: 'acme/shop:v1', canaryImage: 'acme/shop:v2', nowMs: 1_700_000_000_000})
    const first = await store.save(small, undefined, signal)
    const before = await readFile(join(point, 'state.json'), 'utf8')
    const big: RolloutState = {...small, decisions: Array.from({length: 150}, (_, i) => ({...small.decisions[0]!, message: `entry ${i} ${'x'.repeat(200)}`}))}
    fill(join(point, 'filler'))
    // Room for the save lock (one page) and part of the ~45 KB state: the write fails midway.
    await truncate(join(point, 'filler'), (await readFile(join(point, 'filler'))).length - 4 * PAGE)
    const error = await store.save(big, first.version, signal).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(IoError)
    expect((error as IoError).exitCode).toBe(ExitCode.Io)
    expect((error as IoError).errno).toBe('ENOSPC')
    expect((error as Error).message).toBe(`${join(point, 'state.json')}: write failed: no space left on the device (ENOSPC)`)
    expect(await readFile(join(point, 'state.json'), 'utf8')).toBe(before)
    expect((await readdir(point)).sort()).toEqual(['filler', 'state.json'])
    // And with no room at all, taking the lock already fails, naming the lock file.
    fill(join(point, 'filler2'))
    const locked = await acquireLockFile(join(point, 'operation.lock'), {waitMs: 0, operation: 'step', subject: 'release shop', signal}).then(() => undefined, (e: unknown) => e)
    expect(locked).toBeInstanceOf(IoError)
    expect((locked as Error).message).toMatch(/operation\.lock: write lock failed: no space left on the device \(ENOSPC\)/)
    expect((await readdir(point)).sort()).toEqual(['filler', 'filler2', 'state.json'])
  })
})

describe('the local lifecycle on a full, read-only or forbidden disk (built CLI, real tmpfs)', () => {
  let point: string
  let spec: string
  let stateFile: string

  beforeAll(async () => {
    point = await mountTmpfs(32 * 1024 * 1024)
    const release = await aLocalRelease()
    spec = join(point, 'canary.yaml')
    await writeFile(spec, await readFile(release.spec, 'utf8'))
    await rm(release.dir, {recursive: true, force: true})
    stateFile = join(point, '.canary/shop/state.json')
  })

  afterAll(async () => {
    await rm(join(point, 'filler'), {force: true})
    // Stops the daemon and replicas; removing the mount point itself is left to the unmount.
    await cleanUp(point).catch(() => undefined)
  })

  const proxyCanaryWeight = async (): Promise<number | undefined> => {
    const info = JSON.parse(await readFile(join(point, '.canary/shop/daemon.json'), 'utf8')) as {adminUrl: string}
    const token = (await readFile(join(point, '.canary/shop/admin-token'), 'utf8')).trim()
    const state = await (await fetch(`${info.adminUrl}/api/state`, {headers: {authorization: `Bearer ${token}`}})).json() as {services: Record<string, {versions: {name: string; weight: number}[]}>}
    return state.services['shop']?.versions.find((v) => v.name === 'canary')?.weight
  }
  const tempFiles = async () => (await readdir(join(point, '.canary/shop'))).filter((f) => f.endsWith('.tmp'))
  const expectIoError = (result: CliResult, errno: string, file: RegExp) => {
    expect(result.code, result.stdout + result.stderr).toBe(7)
    const error = result.json?.['error'] as {code: string; errno: string; path: string; message: string; suggestions: string[]}
    expect(error).toMatchObject({code: 'E_IO', errno, exitCode: 7})
    expect(error.path).toMatch(file)
    expect(error.message).toContain(error.path)
    expect(error.message).not.toMatch(/internal error/)
    expect(error.suggestions.length).toBeGreaterThan(0)
  }

  it('on a full disk `step --weight 30` exits 7 (E_IO, ENOSPC) with the proxy and the state as they were; with space again it works', async () => {
    expect((await canary(['start', '--image', 'v2', '-f', spec], point)).code).toBe(0)
    expect(await proxyCanaryWeight()).toBe(20)
    const before = await readFile(stateFile, 'utf8')
    fill(join(point, 'filler'))
    const full = await canary(['step', '--weight', '30', '--force', '--json', '-f', spec], point)
    expectIoError(full, 'ENOSPC', /\.canary\/shop\/(operation\.lock|state\.json)$/)
    expect(await proxyCanaryWeight()).toBe(20)
    expect(await readFile(stateFile, 'utf8')).toBe(before)
    expect(await tempFiles()).toEqual([])
    // Room for the two lock files but not for the state: the save fails after the lock, before any action.
    await truncate(join(point, 'filler'), (await readFile(join(point, 'filler'))).length - 2 * PAGE)
    const almost = await canary(['step', '--weight', '30', '--force', '--json', '-f', spec], point)
    expectIoError(almost, 'ENOSPC', /\.canary\/shop\/(operation\.lock|state\.json)$/)
    expect(await proxyCanaryWeight()).toBe(20)
    expect(await readFile(stateFile, 'utf8')).toBe(before)
    expect(await tempFiles()).toEqual([])
    // The data plane kept serving all along.
    const status = await canary(['status', '--json', '-f', spec], point)
    expect(status.json).toMatchObject({canaryWeight: 20, plannedWeight: 20})
    const proxyUrl = String((status.json?.['proxy'] as {url: string}).url)
    expect((await fetch(proxyUrl)).status).toBe(200)
    await rm(join(point, 'filler'))
    const freed = await canary(['step', '--weight', '30', '--force', '--json', '-f', spec], point)
    expect(freed.code, freed.stderr).toBe(0)
    expect(await proxyCanaryWeight()).toBe(30)
    expect(freed.json).toMatchObject({canaryWeight: 30, plannedWeight: 30})
  })

  it('on a read-only file system `step` exits 7 (E_IO, EROFS) naming the file, `status` still answers, nothing changes', async () => {
    const before = await readFile(stateFile, 'utf8')
    const view = await readOnlyView(point)
    const viewSpec = join(view, 'canary.yaml')
    const step = await canary(['step', '--weight', '40', '--force', '--json', '-f', viewSpec], view)
    expectIoError(step, 'EROFS', /\.canary\/shop\/operation\.lock$/)
    expect((step.json?.['error'] as {message: string}).message).toMatch(/the file system is read-only \(EROFS\)/)
    const status = await canary(['status', '--json', '-f', viewSpec], view)
    expect(status.code, status.stderr).toBe(0)
    expect(status.json).toMatchObject({canaryWeight: 30, plannedWeight: 30})
    expect(await proxyCanaryWeight()).toBe(30)
    expect(await readFile(stateFile, 'utf8')).toBe(before)
  })

  it('as a user who may not read .canary/, `step` and `status` exit 7 (E_IO, EACCES) naming the file, not "internal error"', async () => {
    for (const command of [['step', '--weight', '40', '--force'], ['status']]) {
      const result = await new Promise<CliResult>((resolve, reject) => {
        // nobody (65534) may read the spec (0644) but not .canary/ (0700, root's).
        const child = spawn(process.execPath, [CLI, ...command, '--json', '-f', spec], {cwd: point, uid: 65534, gid: 65534, env: {...process.env, HOME: point, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        child.on('error', reject)
        child.on('close', (code) => resolve({code, stdout, stderr, json: stdout === '' ? undefined : JSON.parse(stdout) as Record<string, unknown>}))
      })
      expectIoError(result, 'EACCES', /\.canary\/shop\/state\.json$/)
      expect((result.json?.['error'] as {message: string}).message).toMatch(/permission denied \(EACCES\)/)
    }
    expect(await proxyCanaryWeight()).toBe(30)
  })
})
