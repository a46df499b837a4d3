import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {aLocalRelease, canary, cleanUp, daemonInfo, traffic} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

let dir: string | undefined
const servers: Server[] = []

afterEach(async () => {
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

/** A server started "elsewhere" (here: by the test) answering with its version. */
async function versionServer(version: string): Promise<string> {
  const server = createServer((req, res) => {
    res.writeHead(200, {'content-type': 'application/json'})
    res.end(JSON.stringify({version}))
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('local.upstreams: versions started elsewhere (built CLI)', () => {
  it('routes to the servers listed for the image (by tag), promotes, and never stops them', async () => {
    const v1 = await versionServer('v1')
    const v2 = await versionServer('v2')
    const release = await aLocalRelease({upstreams: {'acme/shop:v1': [v1], v2: [v2]}})
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], dir)).code).toBe(0)
    const load = traffic((await daemonInfo(dir))!.proxyUrl, 100)
    try {
      const stepped = await canary(['step', '--wait', '--timeout', '30s', '-f', release.spec], dir)
      expect(stepped.code, stepped.stderr).toBe(0)
      expect((await canary(['promote', '--force', '--json', '-f', release.spec], dir)).json).toMatchObject({phase: 'Promoted', stable: {image: 'acme/shop:v2'}})
    } finally {
      expect((await load.stop()).failed).toBe(0)
    }
    const served = (await (await fetch(`${(await daemonInfo(dir))!.proxyUrl}/`)).json()) as {version: string}
    expect(served.version).toBe('v2')
    expect(servers.every((s) => s.listening)).toBe(true)
  })

  it('after promote, no sticky cookie pins the old version any more', async () => {
    const v1 = await versionServer('v1')
    const v2 = await versionServer('v2')
    const release = await aLocalRelease({upstreams: {v1: [v1], v2: [v2]}, extraSpec: ['  sticky: {cookie: shop-version}']})
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], dir)).code).toBe(0)
    const proxyUrl = (await daemonInfo(dir))!.proxyUrl
    // Collect one pinning cookie per version while both serve.
    const cookies = new Map<string, string>()
    for (let i = 0; i < 50 && cookies.size < 2; i++) {
      const response = await fetch(`${proxyUrl}/`)
      const {version} = (await response.json()) as {version: string}
      const cookie = response.headers.get('set-cookie')?.split(';')[0]
      if (cookie !== undefined) cookies.set(version, cookie)
    }
    expect([...cookies.keys()].sort()).toEqual(['v1', 'v2'])
    const pinned = async (cookie: string) => ((await (await fetch(`${proxyUrl}/`, {headers: {cookie}})).json()) as {version: string}).version
    expect(await pinned(cookies.get('v1')!)).toBe('v1')
    expect((await canary(['promote', '--force', '-f', release.spec], dir)).code).toBe(0)
    expect(await pinned(cookies.get('v1')!)).toBe('v2')
    expect(await pinned(cookies.get('v2')!)).toBe('v2')
  })

  it('refuses an image with no upstream as a spec problem (exit 3) and leaves nothing running', async () => {
    const v1 = await versionServer('v1')
    const release = await aLocalRelease({upstreams: {v1: [v1]}})
    dir = release.dir
    const started = await canary(['start', '--image', 'v9', '-f', release.spec], dir)
    expect(started.code, started.stderr).toBe(3)
    expect(started.stderr).toMatch(/local.upstreams has no servers for acme\/shop:v9/)
    expect(await daemonInfo(dir)).toBeUndefined()
    expect((await canary(['status', '--json', '-f', release.spec], dir)).json).toMatchObject({phase: 'Aborted'})
  })
})
