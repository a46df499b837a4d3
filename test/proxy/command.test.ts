// End-to-end: the built CLI (`npm run build` first; `npm test` does it).
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {eventually, get, startUpstream, type Upstream} from './helpers.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function writeConfig(v1: Upstream, v2: Upstream, weights = [80, 20], extra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'canary-cmd-'))
  cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
  const file = join(dir, 'proxy.yaml')
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
${extra}routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: v1, weight: ${weights[0]}, servers: [${v1.url}] }
      - { name: v2, weight: ${weights[1]}, servers: [${v2.url}] }
`,
  )
  return file
}

async function run(args: string[]): Promise<{child: ChildProcess; listening: {listen: string; admin: string; pid: number; workers: number}; stderr: () => string}> {
  const child = spawn(process.execPath, [BIN, 'proxy', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  const listening = await new Promise<string>((resolveLine, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString()
      const line = stdout.split('\n').find((l) => l.includes('"listening"'))
      if (line !== undefined) resolveLine(line)
    })
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  return {child, listening: JSON.parse(listening) as never, stderr: () => stderr}
}

async function upstreams(): Promise<[Upstream, Upstream]> {
  const v1 = await startUpstream('v1')
  const v2 = await startUpstream('v2')
  cleanups.push(() => v1.close(), () => v2.close())
  return [v1, v2]
}

describe('canary proxy (built CLI)', () => {
  it('--check accepts a valid file and exits 3 with located problems for an invalid one', async () => {
    const [v1, v2] = await upstreams()
    const good = writeConfig(v1, v2)
    expect(spawnSync(process.execPath, [BIN, 'proxy', '--config', good, '--check'], {encoding: 'utf8'})).toMatchObject({status: 0, stdout: expect.stringContaining('ok (1 routes, 1 services)')})
    const bad = writeConfig(v1, v2, [80, 20], 'lisen: 1\n')
    const result = spawnSync(process.execPath, [BIN, 'proxy', '--config', bad, '--check'], {encoding: 'utf8'})
    expect(result.status).toBe(3)
    expect(result.stderr).toMatch(/proxy\.yaml:3:1 lisen: unknown field \(Did you mean "listen"\?\)/)
    const json = spawnSync(process.execPath, [BIN, 'proxy', '--config', bad, '--check', '--json'], {encoding: 'utf8'})
    expect(JSON.parse(json.stdout)).toMatchObject({error: {code: 'E_CONFIG', exitCode: 3, problems: [{path: 'lisen', location: {line: 3, column: 1}}]}})
  })

  it('prints its listening line, proxies, reloads on SIGHUP and drains on SIGTERM', async () => {
    const [v1, v2] = await upstreams()
    const file = writeConfig(v1, v2)
    const {child, listening, stderr} = await run(['--config', file])
    expect(listening).toMatchObject({msg: 'listening', listen: expect.stringMatching(/^127\.0\.0\.1:\d+$/), admin: expect.stringMatching(/^127\.0\.0\.1:\d+$/), workers: 1})
    expect((await get(`http://${listening.listen}/`)).status).toBe(200)
    child.kill('SIGHUP')
    await eventually(async () => ((await (await fetch(`http://${listening.admin}/api/state`)).json()) as {generation: number}).generation === 2)
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    const [code] = await exit
    expect(code).toBe(0)
    expect(stderr()).toContain('"msg":"config reloaded"')
  })

  it.skipIf(process.platform !== 'linux')('stops its workers when the primary is killed (no orphan keeps the port)', async () => {
    const [v1, v2] = await upstreams()
    const {child, listening} = await run(['--config', writeConfig(v1, v2)])
    const workers = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number)
    expect(workers).toHaveLength(1)
    child.kill('SIGKILL')
    await eventually(() => !existsSync(`/proc/${workers[0]}`) || readFileSync(`/proc/${workers[0]}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true, 10_000)
    await expect(get(`http://${listening.listen}/`)).rejects.toThrow()
  })

  it.skipIf(process.platform !== 'linux')('replaces a worker that dies, with the weights set through the admin API', async () => {
    const [v1, v2] = await upstreams()
    const {child, listening} = await run(['--config', writeConfig(v1, v2)])
    const admin = `http://${listening.admin}`
    expect((await fetch(`${admin}/api/services/s/weights`, {method: 'PUT', headers: {'content-type': 'application/json'}, body: '{"v1": 0, "v2": 100}'})).status).toBe(200)
    const children = () => readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    const [first] = children()
    process.kill(first!, 'SIGKILL')
    await eventually(() => children().length === 1 && children()[0] !== first, 10_000)
    await eventually(async () => (await fetch(`${admin}/api/state`).then((r) => r.json() as Promise<{workers: number}>)).workers === 1, 10_000)
    for (let i = 0; i < 5; i++) expect((await get(`http://${listening.listen}/`)).text).toBe('v2')
  })

  it('--workers 2 applies weight changes in every worker and sums their metrics and stats', async () => {
    const [v1, v2] = await upstreams()
    const file = writeConfig(v1, v2)
    const {child, listening} = await run(['--config', file, '--workers', '2'])
    expect(listening.workers).toBe(2)
    const admin = `http://${listening.admin}`
    const state = (await (await fetch(`${admin}/api/state`)).json()) as {workers: number}
    expect(state.workers).toBe(2)
    const since = Date.now()
    const put = await fetch(`${admin}/api/services/s/weights`, {method: 'PUT', headers: {'content-type': 'application/json'}, body: '{"v1": 0, "v2": 100}'})
    expect(put.status).toBe(200)
    // New connections spread over both workers; every one must already use the new weights.
    const texts = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const response = await fetch(`http://${listening.listen}/`, {headers: {connection: 'close'}})
      texts.add(await response.text())
    }
    expect(texts).toEqual(new Set(['v2']))
    const stats = (await (await fetch(`${admin}/api/services/s/stats?since=${since}`)).json()) as {versions: Record<string, {requests: number}>}
    expect(stats.versions.v2?.requests).toBe(40)
    const metrics = await (await fetch(`${admin}/metrics`)).text()
    expect(metrics).toContain('canary_proxy_requests_total{route="r",service="s",version="v2",code="200"} 40')
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    expect((await exit)[0]).toBe(0)
  })
})
