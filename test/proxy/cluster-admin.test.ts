// The cluster primary's admin API (`canary proxy --workers 2`, the built CLI): token rotation on
// reload, the lookups that go through its config object, and the workers' slow-client counters
// summed in its /metrics. `npm run build` first.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {eventually, startUpstream, type Upstream} from './helpers.js'

const BIN = resolve(import.meta.dirname, '../../bin/run.js')
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function yaml(v1: Upstream, admin: string): string {
  return `listen: 127.0.0.1:0
admin: ${admin}
routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: constructor, weight: 80, servers: [${v1.url}] }
      - { name: v2, weight: 20, servers: [${v1.url}] }
`
}

describe('cluster admin API', () => {
  it('applies a rotated token on reload in every path and refuses a reload that would open a non-loopback admin', async () => {
    const v1 = await startUpstream('v1')
    cleanups.push(() => v1.close())
    const dir = mkdtempSync(join(tmpdir(), 'canary-cluster-admin-'))
    cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
    const file = join(dir, 'proxy.yaml')
    writeFileSync(file, yaml(v1, '{ listen: "0.0.0.0:0", token: old-token }'))
    const child = spawn(process.execPath, [BIN, 'proxy', '--config', file, '--workers', '2'], {stdio: ['ignore', 'pipe', 'pipe']})
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await once(child, 'exit')
      }
    })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const listening = await new Promise<{admin: string}>((resolveLine, reject) => {
      let stdout = ''
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString()
        const line = stdout.split('\n').find((l) => l.includes('"listening"'))
        if (line !== undefined) resolveLine(JSON.parse(line) as {admin: string})
      })
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
    })
    const admin = `http://127.0.0.1:${listening.admin.split(':').at(-1)}`
    const call = async (method: string, path: string, token: string, body?: string) => {
      const response = await fetch(admin + path, {method, headers: {authorization: `Bearer ${token}`, 'content-type': 'application/json'}, ...(body === undefined ? {} : {body})})
      return {status: response.status, json: (await response.json()) as Record<string, unknown>}
    }
    expect((await call('GET', '/api/state', 'old-token')).status).toBe(200)
    // Names of Object.prototype members are neither services nor versions here.
    expect(await call('GET', '/api/services/toString/stats?since=0', 'old-token')).toMatchObject({status: 404, json: {error: 'service toString: not found'}})
    expect((await call('PUT', '/api/services/constructor/weights', 'old-token', '{"v2": 1}')).status).toBe(404)
    expect((await call('PUT', '/api/services/s/weights', 'old-token', '{"v2": 30}')).json).toMatchObject({total: 110, versions: [{name: 'constructor', weight: 80}, {name: 'v2', weight: 30}]})

    writeFileSync(file, yaml(v1, '{ listen: 127.0.0.1:0 }'))
    const refused = await call('POST', '/api/reload', 'old-token')
    expect(refused.status).toBe(400)
    expect(String(refused.json.error)).toMatch(/reload refused: the admin API listens on 0\.0\.0\.0:\d+, which is not loopback, and the new config has no admin.token/)
    expect((await call('GET', '/api/state', 'old-token')).json).toMatchObject({generation: 1, reloads: {success: 0}})

    // The command also watches the file, so the new token may apply before our reload call does.
    writeFileSync(file, yaml(v1, '{ listen: "0.0.0.0:0", token: new-token }'))
    const reloaded = await call('POST', '/api/reload', 'old-token')
    expect([200, 401]).toContain(reloaded.status)
    await eventually(async () => (await call('GET', '/api/state', 'old-token')).status === 401)
    expect((await call('GET', '/metrics', 'old-token')).status).toBe(401)
    const state = await call('GET', '/api/state', 'new-token')
    expect(state).toMatchObject({status: 200, json: {workers: 2}})
    expect(state.json.generation).toBeGreaterThanOrEqual(2)
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    expect((await exit)[0]).toBe(0)
  })

  it('times out stalled bodies in every worker and sums the client-side counters', async () => {
    const v1 = await startUpstream('v1')
    cleanups.push(() => v1.close())
    const dir = mkdtempSync(join(tmpdir(), 'canary-cluster-slow-'))
    cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
    const file = join(dir, 'proxy.yaml')
    writeFileSync(file, yaml(v1, '{ listen: 127.0.0.1:0 }').replace('routes:', 'timeouts: { clientBodyMs: 300 }\nroutes:'))
    const child = spawn(process.execPath, [BIN, 'proxy', '--config', file, '--workers', '2'], {stdio: ['ignore', 'pipe', 'pipe']})
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await once(child, 'exit')
      }
    })
    const listening = await new Promise<{listen: string; admin: string}>((resolveLine, reject) => {
      let stdout = ''
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString()
        const line = stdout.split('\n').find((l) => l.includes('"listening"'))
        if (line !== undefined) resolveLine(JSON.parse(line) as {listen: string; admin: string})
      })
      child.once('exit', (code) => reject(new Error(`exited ${code}`)))
    })
    const port = Number(listening.listen.split(':').at(-1))
    // New connections spread over both workers; each stalled body gets 408 from whichever has it.
    const answers = await Promise.all(
      Array.from({length: 6}, async () => {
        const socket = connect(port, '127.0.0.1')
        socket.on('error', () => undefined)
        await once(socket, 'connect')
        let received = ''
        socket.on('data', (c: Buffer) => (received += c.toString()))
        socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc')
        await once(socket, 'close')
        return received
      }),
    )
    for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 408 /)
    const metrics = await (await fetch(`http://${listening.admin}/metrics`)).text()
    expect(metrics).toContain('canary_proxy_client_errors_total{reason="body_timeout"} 6')
    expect(metrics).toContain('canary_proxy_requests_total{route="r",service="s",version="",code="408"} 6')
    expect(metrics).toMatch(/^canary_proxy_buffered_bytes 0$/m)
    expect(metrics).toMatch(/^canary_proxy_access_log_dropped_total 0$/m)
    const exit = once(child, 'exit')
    child.kill('SIGTERM')
    expect((await exit)[0]).toBe(0)
  })
})
