// One reload/weights/admin scenario, run against both ways the built CLI runs the proxy: in the
// process of the local release daemon (`canary start`, startProxy) and as a primary with two
// workers (`canary proxy --workers 2`). Both go through one control plane (src/proxy/control.ts);
// this keeps their behaviour one. `npm run build` first.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {aLocalRelease, canary, cleanUp} from '../helpers/lifecycle.js'
import {eventually, startUpstream, type Upstream} from './helpers.js'

vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** A proxy under test: where to reach it, and the config file its reloads read. */
interface ProxyUnderTest {
  readonly listen: string
  readonly admin: string
  readonly token: string
  readonly file: string
  /** Processes serving traffic. */
  readonly workers: number
  /** The proxy's operational log (JSON lines) so far. */
  log(): string
}

interface ServiceView {
  versions: {name: string; weight: number}[]
}
interface StateView {
  generation: number
  workers: number
  reloads: {success: number; failure: number}
  services: Record<string, ServiceView>
}

async function upstreams(): Promise<{stable: Upstream; canary: Upstream}> {
  const stable = await startUpstream('stable')
  const canaryUpstream = await startUpstream('canary')
  cleanups.push(() => stable.close(), () => canaryUpstream.close())
  return {stable, canary: canaryUpstream}
}

/** `canary start` of a release whose versions are the two upstreams: its daemon runs the proxy in process. */
async function inProcess(servers: {stable: Upstream; canary: Upstream}): Promise<ProxyUnderTest> {
  const release = await aLocalRelease({upstreams: {'acme/shop:v1': [servers.stable.url], v2: [servers.canary.url]}})
  cleanups.push(() => cleanUp(release.dir))
  const started = await canary(['start', '--image', 'v2', '-f', release.spec], release.dir)
  expect(started.code, started.stderr).toBe(0)
  const files = join(release.dir, '.canary/shop')
  const info = JSON.parse(readFileSync(join(files, 'daemon.json'), 'utf8')) as {proxyUrl: string; adminUrl: string}
  const log = () => readFileSync(join(files, 'daemon.log'), 'utf8')
  return {listen: new URL(info.proxyUrl).host, admin: new URL(info.adminUrl).host, token: readFileSync(join(files, 'admin-token'), 'utf8').trim(), file: join(files, 'proxy.yaml'), workers: 1, log}
}

/** `canary proxy --workers 2` on a config with the same service, versions and file weights as the daemon's. */
async function withWorkers(servers: {stable: Upstream; canary: Upstream}): Promise<ProxyUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'canary-control-'))
  cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
  const file = join(dir, 'proxy.yaml')
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
  token: cluster-token
routes: [{ name: shop, service: shop }]
services:
  shop:
    canary: canary
    versions:
      - { name: stable, weight: 100, servers: [${servers.stable.url}] }
      - { name: canary, weight: 0, servers: [${servers.canary.url}] }
`,
  )
  const child = spawn(process.execPath, [BIN, 'proxy', '--config', file, '--workers', '2'], {stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    expect((await exit)[0], stderr).toBe(0)
  })
  const listening = await new Promise<{listen: string; admin: string}>((resolveLine, reject) => {
    let stdout = ''
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
      const line = stdout.split('\n').find((l) => l.includes('"listening"'))
      if (line !== undefined) resolveLine(JSON.parse(line) as {listen: string; admin: string})
    })
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  return {listen: listening.listen, admin: listening.admin, token: 'cluster-token', file, workers: 2, log: () => stderr}
}

/** The scenario: the same calls and the same answers in both modes. */
async function scenario(proxy: ProxyUnderTest): Promise<void> {
  const call = async (method: string, path: string, body?: string, token = proxy.token) => {
    const response = await fetch(`http://${proxy.admin}${path}`, {method, headers: {authorization: `Bearer ${token}`, 'content-type': 'application/json'}, ...(body === undefined ? {} : {body})})
    const text = await response.text()
    return {status: response.status, json: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>, text}
  }
  const state = async () => (await call('GET', '/api/state')).json as unknown as StateView
  const weights = async () => Object.fromEntries((await state()).services.shop!.versions.map((v) => [v.name, v.weight]))
  /** Which upstream answered each of `n` new connections (spread over every worker). */
  const served = async (n = 20) => {
    const names = new Set<string>()
    for (let i = 0; i < n; i++) names.add(await (await fetch(`http://${proxy.listen}/`, {headers: {connection: 'close'}})).text())
    return names
  }
  const fileText = readFileSync(proxy.file, 'utf8')
  const before = await state()
  expect(before.workers).toBe(proxy.workers)

  // Weights set through the API apply in every process, and the state reports them.
  const set = await call('PUT', '/api/services/shop/weights', '{"stable": 0, "canary": 100}')
  expect(set).toMatchObject({status: 200, json: {total: 100, canary: 'canary', stable: 'stable', versions: [{name: 'stable', weight: 0}, {name: 'canary', weight: 100}]}})
  expect(await weights()).toEqual({stable: 0, canary: 100})
  expect(await served()).toEqual(new Set(['canary']))

  // Refused updates: the same status and reason, and nothing changes.
  expect(await call('PUT', '/api/services/shop/weights', '{"canary": -1}')).toMatchObject({status: 400, json: {error: 'service shop: set weights refused: weight of canary must not be negative, got -1'}})
  expect(await call('PUT', '/api/services/shop/weights', '{"stable": 0}')).toMatchObject({status: 200})
  expect(await call('PUT', '/api/services/shop/weights', '{"canary": 0}')).toMatchObject({status: 400, json: {error: 'service shop: set weights refused: all weights would be 0; at least one version needs a positive weight'}})
  expect(await call('PUT', '/api/services/nope/weights', '{"canary": 1}')).toMatchObject({status: 404, json: {error: 'service nope: not found (services: shop)'}})
  expect(await call('GET', '/api/services/nope/stats?since=0')).toMatchObject({status: 404, json: {error: 'service nope: not found'}})
  expect(await weights()).toEqual({stable: 0, canary: 100})

  // A refused reload keeps the config and the API-set weights.
  writeFileSync(proxy.file, 'listen: [\n')
  expect(await call('POST', '/api/reload')).toMatchObject({status: 400})
  const refused = await state()
  expect(refused).toMatchObject({generation: before.generation, reloads: {success: before.reloads.success}})
  expect(refused.reloads.failure).toBeGreaterThan(before.reloads.failure)
  expect(await weights()).toEqual({stable: 0, canary: 100})
  expect(await served()).toEqual(new Set(['canary']))

  // A reload applies the file's weights (docs/proxy.md "Weights"): the API-set ones are gone.
  writeFileSync(proxy.file, fileText)
  // (`canary proxy` also watches the file, so it may have reloaded already.)
  expect(await call('POST', '/api/reload')).toMatchObject({status: 200})
  expect((await state()).generation).toBeGreaterThan(before.generation)
  expect(await weights()).toEqual({stable: 100, canary: 0})
  expect(await served()).toEqual(new Set(['stable']))
  const metrics = await call('GET', '/metrics')
  expect(metrics.text).toContain('canary_proxy_weight{service="shop",version="canary"} 0')

  // A new listen address applies after a restart only, and both modes say so.
  writeFileSync(proxy.file, fileText.replace(/^listen: .*$/m, 'listen: 127.0.0.2:0'))
  expect(await call('POST', '/api/reload')).toMatchObject({status: 200})
  await eventually(() => proxy.log().includes('"msg":"listen addresses changed in the config; they apply after a restart","listen":"127.0.0.2:0"'))
  expect(await served()).toEqual(new Set(['stable']))

  // A new token applies to the next request after a reload, in every path.
  writeFileSync(proxy.file, fileText.replace(/^ {2}token: .*$/m, '  token: rotated-token'))
  const rotated = await call('POST', '/api/reload')
  expect([200, 401]).toContain(rotated.status)
  await eventually(async () => (await call('GET', '/api/state')).status === 401)
  expect((await call('GET', '/metrics')).status).toBe(401)
  expect((await call('GET', '/api/state', undefined, 'rotated-token')).status).toBe(200)
}

describe('one control plane for the in-process and the clustered proxy (built CLI)', () => {
  it('in process (the release daemon): weights, refused updates, refused and applied reloads, token rotation', async () => {
    await scenario(await inProcess(await upstreams()))
  })

  it('--workers 2: the same scenario, the same answers', async () => {
    await scenario(await withWorkers(await upstreams()))
  })
})
