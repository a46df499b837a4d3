import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ReplicaSet} from '../../src/local/supervisor.js'
import {eventually} from '../helpers/lifecycle.js'

const DEMO_APP = join(import.meta.dirname, '../../src/demo/app.ts')
let dir: string
const sets: ReplicaSet[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canary-supervisor-'))
})

afterEach(async () => {
  await Promise.all(sets.splice(0).map((s) => s.stop()))
  await rm(dir, {recursive: true, force: true})
})

async function start(command: string, replicas = 1, env: Record<string, string> = {}) {
  const set = await ReplicaSet.start({track: 'canary', image: 'acme/shop:v2', command, replicas, probePath: '/healthz', env, logDir: dir})
  sets.push(set)
  return set
}

describe('the replica supervisor', () => {
  it('starts each replica with its own PORT and the IMAGE, and reports ready once the probe answers', async () => {
    const set = await start(`${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(DEMO_APP)}`, 2)
    expect(await eventually(() => set.readiness().ready, 20_000)).toBe(true)
    expect(set.readiness()).toMatchObject({ready: true, readyReplicas: 2, replicas: 2})
    const [a, b] = set.urls
    expect(a).not.toBe(b)
    const answer = (await (await fetch(`${a}/`)).json()) as {version: string}
    expect(answer.version).toBe('acme/shop:v2')
  })

  it('restarts a crashing replica with backoff and reports a crash loop as failed', async () => {
    const set = await start('echo starting; exit 3')
    expect(await eventually(() => set.readiness().failed === true, 20_000)).toBe(true)
    const readiness = set.readiness()
    expect(readiness.ready).toBe(false)
    expect(readiness.reason).toMatch(/crash-looping \(3 restarts, last exited with code 3\)/)
    const log = await readFile(join(dir, 'canary-0.log'), 'utf8')
    expect(log.match(/starting canary replica 0/g)?.length).toBeGreaterThanOrEqual(3)
  })

  it('stops the whole process group, not just the shell', async () => {
    const set = await start(`${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(DEMO_APP)}`)
    expect(await eventually(() => set.readiness().ready, 20_000)).toBe(true)
    const url = set.urls[0]!
    await set.stop()
    await expect(fetch(`${url}/`)).rejects.toThrow()
  })

  it('returns from stop only when the app the shell started is gone, even if it drains slowly', async () => {
    // An app that keeps serving for 500 ms after SIGTERM: the shell dies at once, the app does not.
    const app = join(dir, 'slow-drain.cjs')
    await writeFile(app, [
      "const http = require('node:http')",
      "const server = http.createServer((req, res) => res.end('up')).listen(Number(process.env.PORT), '127.0.0.1')",
      "process.on('SIGTERM', () => setTimeout(() => { server.close(); process.exit(0) }, 500))",
    ].join('\n'))
    const set = await start(`${JSON.stringify(process.execPath)} ${JSON.stringify(app)}`)
    expect(await eventually(() => set.readiness().ready, 20_000)).toBe(true)
    const url = set.urls[0]!
    await set.stop()
    await expect(fetch(`${url}/`)).rejects.toThrow()
  })
})
