// The access log on a stdout pipe nobody reads, with the built CLI as a real child process
// (`npm run build` first): the proxy keeps serving, the log buffer stays bounded, and every line
// it could not write is counted in canary_proxy_access_log_dropped_total.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {Agent, request} from 'node:http'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {eventually, startUpstream} from './helpers.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const MAX_BUFFER_BYTES = 256 * 1024
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match?.[1] ?? 0)
}

async function metric(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  let sum = 0
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(match[1])
  return sum
}

describe('access log on an unread stdout pipe', () => {
  it('drops and counts lines instead of growing, keeps serving, and loses none uncounted', async () => {
    const upstream = await startUpstream('v1')
    cleanups.push(() => upstream.close())
    const dir = mkdtempSync(join(tmpdir(), 'canary-access-pipe-'))
    cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
    const file = join(dir, 'proxy.yaml')
    writeFileSync(
      file,
      `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
accessLog: { path: "-", maxBufferBytes: ${MAX_BUFFER_BYTES} }
timeouts: { drainMs: 1000 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${upstream.url}] }]
`,
    )
    const child = spawn(process.execPath, [BIN, 'proxy', '--config', file], {stdio: ['ignore', 'pipe', 'pipe']})
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await once(child, 'exit')
      }
    })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    let stdout = ''
    const onData = (c: Buffer) => (stdout += c.toString())
    child.stdout.on('data', onData)
    const listening = await new Promise<{listen: string; admin: string}>((resolveLine, reject) => {
      const check = () => {
        const line = stdout.split('\n').find((l) => l.includes('"listening"'))
        if (line !== undefined) resolveLine(JSON.parse(line) as {listen: string; admin: string})
      }
      child.stdout.on('data', check)
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
    })
    // From now on nobody reads the pipe: the kernel buffer and this side's stream buffer fill up.
    child.stdout.off('data', onData)
    child.stdout.removeAllListeners('data')
    child.stdout.pause()
    const logged = stdout.split('\n').filter((l) => l.startsWith('{"time"')).length
    const admin = `http://${listening.admin}`
    const worker = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0])
    const rssBefore = rssKiB(worker)

    // ~15 MB of log lines (a 2 KB path each) through 50 keep-alive connections.
    const agent = new Agent({keepAlive: true, maxSockets: 50})
    cleanups.push(() => agent.destroy())
    const path = `/${'p'.repeat(2000)}`
    const one = () =>
      new Promise<number>((done, fail) => {
        const req = request(`http://${listening.listen}${path}`, {agent}, (res) => {
          res.resume()
          res.on('end', () => done(res.statusCode ?? 0))
        })
        req.on('error', fail)
        req.end()
      })
    const statuses: number[] = []
    const total = 6000
    let next = 0
    await Promise.all(
      Array.from({length: 50}, async () => {
        while (next < total) {
          next++
          statuses.push(await one())
        }
      }),
    )
    expect(statuses.filter((s) => s !== 200)).toEqual([])
    const dropped = await metric(admin, 'canary_proxy_access_log_dropped_total')
    const rssAfter = rssKiB(worker)
    // Without the bound every line stays in memory (~15 MB here); with it at most two buffers.
    expect(dropped).toBeGreaterThan(total / 2)
    expect(rssAfter - rssBefore, `worker RSS ${rssBefore} → ${rssAfter} KiB`).toBeLessThan(64 * 1024)
    process.stdout.write(`access-log pipe: ${total} requests, ${dropped} lines dropped, worker RSS ${rssBefore} → ${rssAfter} KiB\n`)

    // Reading again releases the stuck write: every line was either written or counted as dropped.
    let rest = ''
    child.stdout.on('data', (c: Buffer) => (rest += c.toString()))
    child.stdout.resume()
    const requests = await metric(admin, 'canary_proxy_requests_total')
    expect(requests).toBe(total)
    await eventually(() => rest.split('\n').filter((l) => l.startsWith('{"time"')).length + logged + dropped >= total, 10_000)
    const written = rest.split('\n').filter((l) => l.startsWith('{"time"')).length + logged
    expect(written + dropped).toBe(total)
    expect(written * (path.length + 300)).toBeLessThan(2 * MAX_BUFFER_BYTES + 1024 * 1024)
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    expect((await exit)[0]).toBe(0)
  }, 120_000)
})
