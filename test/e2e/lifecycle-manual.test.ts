import {afterEach, describe, expect, it, vi} from 'vitest'

import {alive, aLocalRelease, canary, cleanUp, daemonInfo, eventually, traffic} from '../helpers/lifecycle.js'

// Each test spawns the CLI several times (about a second each on a busy machine) and waits for real intervals.
vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

let dir: string | undefined

afterEach(async () => {
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
})

describe('the manual lifecycle on the local target (built CLI)', () => {
  it('starts, refuses a second start, gates steps on analysis, promotes, and cleans up', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    const f = ['-f', release.spec]

    const started = await canary(['start', 'shop', '--image', 'v2', '--json', ...f], dir)
    expect(started.code, started.stderr).toBe(0)
    expect(started.json).toMatchObject({name: 'shop', phase: 'Progressing', canaryWeight: 20, stable: {image: 'acme/shop:v1'}, canary: {image: 'acme/shop:v2'}})
    expect((started.json?.proxy as {url: string}).url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const again = await canary(['start', '--image', 'v3', ...f], dir)
    expect(again.code).toBe(5)
    expect(again.stderr).toMatch(/a rollout of acme\/shop:v2 is in progress/)

    const early = await canary(['step', ...f], dir)
    expect(early.code).toBe(13)
    expect(early.stderr).toMatch(/not enough evidence to pass the canary yet/)

    const load = traffic((started.json?.proxy as {url: string}).url, 100)
    try {
      const stepped = await canary(['step', '--wait', '--timeout', '60s', '--json', ...f], dir)
      expect(stepped.code, stepped.stderr).toBe(0)
      expect(stepped.json).toMatchObject({phase: 'Progressing', canaryWeight: 50, step: {index: 2, count: 3}})

      const status = await canary(['status', '--json', ...f], dir)
      expect(status.code).toBe(0)
      const observed = status.json?.observed as {stable: {requests: number}; canary: {requests: number}}
      expect(observed.stable.requests + observed.canary.requests).toBeGreaterThanOrEqual(0)
      expect((status.json?.decisions as unknown[]).length).toBeGreaterThan(3)

      const promoted = await canary(['promote', '--force', ...f], dir)
      expect(promoted.code, promoted.stderr).toBe(0)
    } finally {
      const counts = await load.stop()
      expect(counts.failed).toBe(0)
    }
    const final = await canary(['status', '--wait', '--json', ...f], dir)
    expect(final.code).toBe(0)
    expect(final.json).toMatchObject({phase: 'Promoted', stable: {image: 'acme/shop:v2'}, exitCode: 0})

    const noRollout = await canary(['step', ...f], dir)
    expect(noRollout.code).toBe(4)
    const abortTwice = await canary(['abort', ...f], dir)
    expect(abortTwice.code).toBe(0)

    const info = await daemonInfo(dir)
    const down = await canary(['down', ...f], dir)
    expect(down.code).toBe(0)
    expect(await eventually(() => !alive(info!.pid))).toBe(true)
    expect(await daemonInfo(dir)).toBeUndefined()
  })

  it('aborts at once: all traffic back to stable, canary stopped, idempotent', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    const f = ['-f', release.spec]
    expect((await canary(['start', '--image', 'v2', ...f], dir)).code).toBe(0)
    const aborted = await canary(['abort', '--json', ...f], dir)
    expect(aborted.code).toBe(0)
    expect(aborted.json).toMatchObject({phase: 'Aborted', canaryWeight: 0, exitCode: 11})
    const info = await daemonInfo(dir)
    const tracks = await fetch(`${info!.proxyUrl}/`).then((r) => r.json() as Promise<{version: string}>)
    expect(tracks.version).toBe('acme/shop:v1')
    expect((await canary(['abort', ...f], dir)).code).toBe(0)
    const waited = await canary(['status', '--wait', ...f], dir)
    expect(waited.code).toBe(11)
  })
})
