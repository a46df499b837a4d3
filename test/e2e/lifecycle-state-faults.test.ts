// The local lifecycle under contention and OS faults, through the built CLI: racing commands,
// a taken port, corrupt local records. A command that loses or fails changes nothing: the proxy
// weight always equals the saved plan's.
import {spawnSync} from 'node:child_process'
import {once} from 'node:events'
import {mkdir, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {alive, aLocalRelease, canary, cleanUp, daemonInfo, type CliResult} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 180_000, hookTimeout: 60_000})

let dir: string | undefined
const servers: Server[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve))
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
})

/** A port another program holds. */
async function takenPort(): Promise<number> {
  const server = createServer()
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as {port: number}).port
}

/** The weight the proxy reports and the one the saved state plans, via `status --json`. */
async function weights(spec: string, cwd: string): Promise<{proxy: unknown; planned: unknown}> {
  const status = await canary(['status', '--json', '-f', spec], cwd)
  expect(status.code, status.stderr).toBe(0)
  return {proxy: status.json?.['canaryWeight'], planned: status.json?.['plannedWeight']}
}

/** The canary weight the release's proxy reports on its admin API (read directly, not through canary). */
async function proxyCanaryWeight(releaseDir: string): Promise<number | undefined> {
  const info = JSON.parse(await readFile(join(releaseDir, '.canary/shop/daemon.json'), 'utf8')) as {adminUrl: string}
  const token = (await readFile(join(releaseDir, '.canary/shop/admin-token'), 'utf8')).trim()
  const state = await (await fetch(`${info.adminUrl}/api/state`, {headers: {authorization: `Bearer ${token}`}})).json() as {services: Record<string, {versions: {name: string; weight: number}[]}>}
  return state.services['shop']?.versions.find((v) => v.name === 'canary')?.weight
}

/** Daemon processes (daemon-main) started for the spec in `dir`. */
function daemonsOf(spec: string): number[] {
  const found = spawnSync('pgrep', ['-f', `daemon-main.js ${spec}`], {encoding: 'utf8'})
  if (found.error !== undefined) throw new Error(`pgrep is needed by this test: ${found.error.message}`)
  return found.stdout.split('\n').filter((l) => l !== '').map(Number)
}

describe('racing commands (built CLI)', () => {
  it('of four simultaneous starts one wins and the others exit 5 having started nothing', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    const results = await Promise.all(Array.from({length: 4}, () => canary(['start', '--image', 'v2', '-f', release.spec], release.dir)))
    const codes = results.map((r) => r.code).sort()
    expect(codes, results.map((r) => r.stderr).join('\n')).toEqual([0, 5, 5, 5])
    for (const loser of results.filter((r) => r.code === 5)) expect(loser.stderr).toMatch(/another operation is in progress|a rollout of acme\/shop:v2 is in progress/)
    expect(daemonsOf(release.spec)).toHaveLength(1)
    expect(await weights(release.spec, release.dir)).toEqual({proxy: 20, planned: 20})
  })

  it('ten simultaneous `step --weight` (twice) leave the proxy exactly where the saved state says, whoever lost', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], release.dir)).code).toBe(0)
    for (let round = 0; round < 2; round++) {
      const asked = Array.from({length: 10}, (_, i) => 21 + i + round * 20)
      const results: CliResult[] = await Promise.all(asked.map((weight) => canary(['step', '--weight', String(weight), '--force', '-f', release.spec], release.dir)))
      const codes = new Set(results.map((r) => r.code))
      expect([...codes].every((code) => code === 0 || code === 5), results.map((r) => `${r.code} ${r.stderr}`).join('\n')).toBe(true)
      const winners = asked.filter((_, i) => results[i]!.code === 0)
      expect(winners.length).toBeGreaterThan(0)
      const now = await weights(release.spec, release.dir)
      expect(now.proxy).toBe(now.planned)
      expect(await proxyCanaryWeight(release.dir)).toBe(now.planned)
      expect(winners).toContain(now.planned)
    }
  })
})

describe('a taken port (built CLI)', () => {
  it('`canary proxy` exits 8 with E_ADDRESS_IN_USE naming the address, for the listener and for the admin API', async () => {
    const port = await takenPort()
    const release = await aLocalRelease()
    dir = release.dir
    for (const [listen, admin] of [[`127.0.0.1:${port}`, '127.0.0.1:0'], ['127.0.0.1:0', `127.0.0.1:${port}`]]) {
      const config = join(release.dir, 'proxy.yaml')
      await writeFile(config, `listen: ${listen}\nadmin: { listen: ${admin} }\nroutes: [{ name: r, service: s }]\nservices:\n  s:\n    versions:\n      - { name: v1, weight: 100, servers: [http://127.0.0.1:1] }\n`)
      const result = await canary(['proxy', '--config', config, '--json'], release.dir)
      expect(result.code, result.stderr).toBe(8)
      expect(result.json).toMatchObject({error: {code: 'E_ADDRESS_IN_USE', exitCode: 8, address: `127.0.0.1:${port}`}})
      expect(String((result.json?.['error'] as {message: string}).message)).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: listen failed: the address is already in use \\(EADDRINUSE\\)`))
      const human = await canary(['proxy', '--config', config], release.dir)
      expect(human.code).toBe(8)
      expect(human.stderr).toMatch(/Error \[E_ADDRESS_IN_USE\]/)
      expect(human.stderr).toMatch(/hint: Stop the program that listens there/)
      expect(human.stderr).not.toMatch(/internal error|bug in canary/)
    }
  })

  it('`canary start` on a taken local.listen exits 8 (not 14 "timed out"), names the address and leaves nothing running', async () => {
    const port = await takenPort()
    const release = await aLocalRelease()
    dir = release.dir
    await writeFile(release.spec, (await readFile(release.spec, 'utf8')).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${port}`))
    const result = await canary(['start', '--image', 'v2', '-f', release.spec, '--json'], release.dir)
    expect(result.code, result.stdout + result.stderr).toBe(8)
    expect(result.json).toMatchObject({error: {code: 'E_ADDRESS_IN_USE', exitCode: 8}})
    expect(String((result.json?.['error'] as {message: string}).message)).toContain(`127.0.0.1:${port}`)
    expect(await daemonInfo(release.dir)).toBeUndefined()
    expect(daemonsOf(release.spec)).toEqual([])
  })
})

describe('corrupt local records (built CLI)', () => {
  it('a daemon record with a wrong field is refused with exit 3 naming file and field, and left alone', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], release.dir)).code).toBe(0)
    const file = join(release.dir, '.canary/shop/daemon.json')
    const good = await readFile(file, 'utf8')
    const bad = good.replace(/"pid": (\d+)/, '"pid": "$1"')
    await writeFile(file, bad)
    const status = await canary(['status', '-f', release.spec], release.dir)
    expect(status.code).toBe(3)
    expect(status.stderr).toContain(file)
    expect(status.stderr).toMatch(/field pid: expected a number/)
    expect(await readFile(file, 'utf8')).toBe(bad)
    await writeFile(file, good)
  })

  it('`canary down` refuses to signal process groups from a corrupt record (pid 1 would mean every process)', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], release.dir)).code).toBe(0)
    const info = await daemonInfo(release.dir)
    process.kill(info!.pid, 'SIGKILL')
    const groupsFile = join(release.dir, '.canary/shop/replica-groups.json')
    const groups = JSON.parse(await readFile(groupsFile, 'utf8')) as {pid: number}[]
    await writeFile(groupsFile, JSON.stringify([1, ...groups]))
    const down = await canary(['down', '-f', release.spec], release.dir)
    expect(down.code).toBe(3)
    expect(down.stderr).toMatch(/replica process groups record .*replica-groups\.json: corrupt: field 0: must be at least 2, found 1/)
    expect(groups.every((g) => alive(g.pid))).toBe(true)
    await writeFile(groupsFile, JSON.stringify(groups))
    expect((await canary(['down', '-f', release.spec], release.dir)).code).toBe(0)
  })

  it('a state file with {}, stepIndex "two", an unknown phase, nothing in it, or a directory in its place: status, step, abort and promote exit 3 naming file and field; nothing is changed', async () => {
    const release = await aLocalRelease()
    dir = release.dir
    expect((await canary(['start', '--image', 'v2', '-f', release.spec], release.dir)).code).toBe(0)
    const stateFile = join(release.dir, '.canary/shop/state.json')
    const good = await readFile(stateFile, 'utf8')
    const state = JSON.parse(good) as {state: Record<string, unknown>}
    const cases: [string, string | 'directory', RegExp][] = [
      ['{}', '{}', /corrupt: 3 problems \(fields format, revision, state\)/],
      ['stepIndex "two"', JSON.stringify({...state, state: {...state.state, stepIndex: 'two'}}), /field state\.stepIndex: expected a number, found "two"/],
      ['an unknown phase', JSON.stringify({...state, state: {...state.state, phase: 'Exploding'}}), /field state\.phase: expected "Starting".*found "Exploding"/],
      ['an empty file', '', /is empty/],
      ['a directory', 'directory', /is a directory/],
    ]
    for (const [name, content, message] of cases) {
      await rm(stateFile, {recursive: true, force: true})
      if (content === 'directory') await mkdir(stateFile)
      else await writeFile(stateFile, content)
      for (const command of [['status'], ['step', '--weight', '40', '--force'], ['abort'], ['promote', '--force']]) {
        const result = await canary([...command, '-f', release.spec], release.dir)
        expect(result.code, `${name}: ${command.join(' ')}: ${result.stderr}`).toBe(3)
        expect(result.stderr).toContain(stateFile)
        expect(result.stderr, name).toMatch(message)
        expect(result.stderr).not.toMatch(/internal error/)
      }
      if (content === 'directory') expect(await readdir(stateFile)).toEqual([])
      else expect(await readFile(stateFile, 'utf8'), name).toBe(content)
      // The proxy was never touched: still the first step's weight.
      expect(await proxyCanaryWeight(release.dir), name).toBe(20)
    }
    await rm(stateFile, {recursive: true, force: true})
    await writeFile(stateFile, good)
    expect((await canary(['status', '-f', release.spec], release.dir)).code).toBe(0)
  })
})
