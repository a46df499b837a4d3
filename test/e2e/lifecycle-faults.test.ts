import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {alive, aLocalRelease, canary, cleanUp, daemonInfo, eventually} from '../helpers/lifecycle.js'

// Each test spawns the CLI several times (about a second each on a busy machine) and waits for real intervals.
vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

let dir: string | undefined

afterEach(async () => {
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
})

describe('bad input and faults on the local target (built CLI)', () => {
  it('names an unknown release and a missing rollout (exit 4)', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    const unknown = await canary(['status', 'nope', '-f', release.spec], dir)
    expect(unknown.code).toBe(4)
    expect(unknown.stderr).toMatch(/release nope: not found/)
    for (const command of ['step', 'promote', 'abort']) {
      const result = await canary([command, '-f', release.spec], dir)
      expect(result.code, command).toBe(4)
      expect(result.stderr, command).toMatch(/no rollout in progress/)
    }
  })

  it('says how to recover when the proxy daemon was killed between commands (exit 6)', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], dir)).code).toBe(0)
    const info = await daemonInfo(dir)
    process.kill(info!.pid, 'SIGKILL')
    await eventually(() => !alive(info!.pid))
    const status = await canary(['status', '-f', release.spec], dir)
    expect(status.code).toBe(6)
    expect(status.stderr).toMatch(/proxy daemon \(pid \d+\) is not running/)
    expect(status.stderr).toMatch(/canary down/)
    const step = await canary(['step', '--force', '-f', release.spec], dir)
    expect(step.code).toBe(6)
    const groups = JSON.parse(await readFile(join(dir, '.canary/shop/replica-groups.json'), 'utf8')) as number[]
    expect(groups.length).toBe(2)
    const down = await canary(['down', '-f', release.spec], dir)
    expect(down.code).toBe(0)
    expect(down.stdout).toMatch(/stopped replica process group/)
    expect(await eventually(() => groups.every((pid) => !alive(pid)))).toBe(true)
    expect((await canary(['status', '-f', release.spec], dir)).code).toBe(4)
  })

  it('gives up on a canary that never becomes ready: exit 14, nothing left running', async () => {
    const release = await aLocalRelease({env: {DEMO_BAD_IMAGE: 'acme/shop:v2', DEMO_NEVER_READY: '1'}, readyTimeout: '2s'})
    dir = release.dir
    const started = await canary(['start', '--image', 'v2', '-f', release.spec], dir)
    expect(started.code, started.stderr).toBe(14)
    expect(started.stderr).toMatch(/not ready after 2 s/)
    expect(await daemonInfo(dir)).toBeUndefined()
    const state = JSON.parse(await readFile(join(dir, '.canary/shop/state.json'), 'utf8')) as {state: {phase: string}}
    expect(state.state.phase).toBe('Failed')
  })

  it('refuses a step while another operation holds the release (exit 5, state intact); of two simultaneous steps at most one is refused', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], dir)).code).toBe(0)
    const stateFile = join(dir, '.canary/shop/state.json')
    const lockFile = join(dir, '.canary/shop/operation.lock')
    const before = await readFile(stateFile, 'utf8')
    // Another live process (this test) holds the operation lock, as a concurrent `canary step` would.
    await writeFile(lockFile, JSON.stringify({pid: process.pid, operation: 'step', sinceMs: Date.now()}))
    const blocked = await canary(['step', '--force', '-f', release.spec], dir)
    expect(blocked.code).toBe(5)
    expect(blocked.stderr).toMatch(/another operation is in progress \(step, pid \d+\)/)
    expect(await readFile(stateFile, 'utf8')).toBe(before)
    await rm(lockFile)

    const [a, b] = await Promise.all([canary(['step', '--force', '-f', release.spec], dir), canary(['step', '--force', '-f', release.spec], dir)])
    const codes = [a.code, b.code].sort()
    // Either they overlapped (one wins, the other exits 5) or ran one after the other (both advance).
    expect([[0, 0], [0, 5]]).toContainEqual(codes)
    const status = await canary(['status', '--json', '-f', release.spec], dir)
    expect(status.code).toBe(0)
    expect(status.json).toMatchObject({canaryWeight: codes[1] === 5 ? 50 : 100})
  })

  it.each([
    ['corrupt', '{"format": "canary.rollout/v1", "revision": 3, "sta'],
    ['from another version', JSON.stringify({format: 'canary.rollout/v9', revision: 1, state: {}})],
  ])('refuses a state file that is %s, names it, and never overwrites it (exit 3)', async (_kind, content) => {
    const release = await aLocalRelease()
    dir = release.dir
    const stateFile = join(dir, '.canary/shop/state.json')
    await mkdir(join(dir, '.canary/shop'), {recursive: true})
    await writeFile(stateFile, content)
    for (const command of [['status'], ['step', '--force'], ['abort']]) {
      const result = await canary([...command, '-f', release.spec], dir)
      expect(result.code, command.join(' ')).toBe(3)
      expect(result.stderr).toContain(stateFile)
    }
    expect(await readFile(stateFile, 'utf8')).toBe(content)
  })
})
