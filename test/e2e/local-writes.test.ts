/**
 * The local target keeps the Kubernetes target's save rule (src/rollout/engine.ts): a command that
 * changes nothing leaves the state file as it was; its revision counts the writes.
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {aLocalRelease, canary, cleanUp} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

let dir: string | undefined

afterEach(async () => {
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
})

async function revision(releaseDir: string): Promise<number> {
  return (JSON.parse(await readFile(join(releaseDir, '.canary', 'shop', 'state.json'), 'utf8')) as {revision: number}).revision
}

describe('writes of the local state file', () => {
  it('a step to the weight in force and a status write nothing; a step that moves the weight writes once', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    const f = ['-f', release.spec]
    const started = await canary(['start', '--image', 'v2', '--json', ...f], dir)
    expect(started.code, started.stderr).toBe(0)
    expect(started.json).toMatchObject({canaryWeight: 20})
    const afterStart = await revision(dir)

    const noOp = await canary(['step', '--weight', '20', '--json', ...f], dir)
    expect(noOp.code, noOp.stderr).toBe(0)
    expect(noOp.json).toMatchObject({phase: 'Progressing', canaryWeight: 20})
    const status = await canary(['status', '--json', ...f], dir)
    expect(status.code, status.stderr).toBe(0)
    expect(await revision(dir)).toBe(afterStart)

    const moved = await canary(['step', '--weight', '30', '--force', '--json', ...f], dir)
    expect(moved.code, moved.stderr).toBe(0)
    expect(moved.json).toMatchObject({canaryWeight: 30})
    expect(await revision(dir)).toBe(afterStart + 1)
  })
})
