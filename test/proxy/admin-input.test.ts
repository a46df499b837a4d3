// The admin API at its boundary: every input it takes (path, query, headers, body) refused with a
// clear 4xx when bad, never a 500, a hang or a half-applied change; token rotation on reload.
import {once} from 'node:events'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {Agent, request} from 'node:http'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {loadProxyConfig} from '../../src/proxy/config.js'
import {config, start, startUpstream, type Upstream} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

const TOKEN = 'old-token'

function yaml(v1: Upstream, v2: Upstream, admin: string, extra = ''): string {
  return `listen: 127.0.0.1:0
admin: ${admin}
${extra}routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: constructor, weight: 80, servers: [${v1.url}] }
      - { name: v2, weight: 20, servers: [${v2.url}] }
    canary: v2
`
}

interface Reply {
  status: number
  text: string
  json: Record<string, unknown> | undefined
}

/** One admin request with node:http, so the target goes out exactly as written. */
function call(base: string, method: string, path: string, options: {body?: string | Buffer; headers?: Record<string, string>; agent?: Agent} = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // An explicit length: Node would send an OPTIONS or DELETE body without any framing.
    const length = options.body === undefined || options.headers?.['transfer-encoding'] !== undefined ? {} : {'content-length': String(Buffer.byteLength(options.body))}
    const req = request(`${base}${path.startsWith('/') ? '' : '/'}`, {method, path, headers: {...length, ...options.headers}, agent: options.agent ?? false, timeout: 10_000}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({status: res.statusCode ?? 0, text, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined})
      })
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)))
    req.end(options.body)
  })
}

async function setup(admin = `{ listen: 127.0.0.1:0, token: "\${TOKEN}" }`, extra = '') {
  const v1 = await startUpstream('v1')
  const v2 = await startUpstream('v2')
  const dir = mkdtempSync(join(tmpdir(), 'canary-admin-input-'))
  const file = join(dir, 'proxy.yaml')
  writeFileSync(file, yaml(v1, v2, admin, extra))
  const proxy = await start(await loadProxyConfig(file, {TOKEN}), {configFile: file, env: {TOKEN}})
  cleanups.push(async () => {
    await proxy.close()
    await v1.close()
    await v2.close()
    rmSync(dir, {recursive: true, force: true})
  })
  return {proxy, v1, v2, file, dir}
}

const json = (token = TOKEN) => ({authorization: `Bearer ${token}`, 'content-type': 'application/json'})

describe('admin API input', () => {
  it('refuses bad weights with 400 and a reason, and applies nothing', async () => {
    const {proxy} = await setup()
    const refused: [string, RegExp][] = [
      ['{"v2": 9007199254740993}', /must be at most 1000000, got 9007199254740992/],
      ['{"v2": 1e400}', /Infinity \(a number too large to represent\)/],
      ['{"v2": 1000001}', /must be at most 1000000/],
      ['{"v2": -1}', /must not be negative/],
      ['{"v2": -0.5}', /must be an integer, got -0.5/],
      ['{"v2": 2.5}', /must be an integer, got 2.5/],
      ['{"v2": "20"}', /must be an integer, got "20"/],
      ['{"v2": null}', /must be an integer, got null/],
      ['{"v2": [20]}', /must be an integer, got an array/],
      ['{"v2": {"value": 20}}', /must be an integer, got an object/],
      ['{"v2": true}', /must be an integer, got true/],
      ['{"toString": 5}', /unknown version "toString"/],
      ['{"__proto__": 5}', /unknown version "__proto__"/],
      ['{}', /no weights given/],
      ['{"constructor": 0, "v2": 0}', /all weights would be 0/],
      ['[]', /expected a JSON object/],
      ['"v2"', /expected a JSON object/],
      ['null', /expected a JSON object/],
      ['', /bad JSON/],
      ['{"v2": 20', /bad JSON/],
      ['{"v2": 20}{"v2": 30}', /bad JSON/],
      [`${'['.repeat(30_000)}${']'.repeat(30_000)}`, /expected a JSON object/],
      [`{"v2": ${'['.repeat(20_000)}${']'.repeat(20_000)}}`, /got an array/],
    ]
    for (const [body, reason] of refused) {
      const reply = await call(proxy.adminUrl, 'PUT', '/api/services/s/weights', {body, headers: json()})
      expect(reply.status, body.slice(0, 40)).toBe(400)
      expect(String(reply.json?.error), body.slice(0, 40)).toMatch(reason)
    }
    const invalidUtf8 = Buffer.concat([Buffer.from('{"v2": 1, "x": "'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
    expect(await call(proxy.adminUrl, 'PUT', '/api/services/s/weights', {body: invalidUtf8, headers: json()})).toMatchObject({status: 400, json: {error: 'body is not valid UTF-8'}})
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data']) {
      const headers: Record<string, string> = {authorization: `Bearer ${TOKEN}`, ...(type === undefined ? {} : {'content-type': type})}
      const reply = await call(proxy.adminUrl, 'PUT', '/api/services/s/weights', {body: '{"v2": 50}', headers})
      expect(reply.status, String(type)).toBe(415)
      expect(String(reply.json?.error)).toMatch(/content-type must be application\/json/)
    }
    const big = `{"v2": 1, "pad": "${'x'.repeat(70_000)}"}`
    expect(await call(proxy.adminUrl, 'PUT', '/api/services/s/weights', {body: big, headers: json()})).toMatchObject({status: 413, json: {error: expect.stringMatching(/larger than the limit of 65536/) as unknown}})
    // Chunked (no Content-Length): refused while reading.
    const chunked = await new Promise<Reply>((resolve, reject) => {
      const req = request(`${proxy.adminUrl}/api/services/s/weights`, {method: 'PUT', headers: {...json(), 'transfer-encoding': 'chunked'}, agent: false}, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), json: undefined}))
      })
      req.on('error', reject)
      for (let i = 0; i < 20; i++) req.write('x'.repeat(8192))
      req.end()
    })
    expect(chunked.status).toBe(413)
    // Nothing was applied, and the version named like an Object.prototype member kept its weight.
    const state = await call(proxy.adminUrl, 'GET', '/api/state', {headers: json()})
    expect(state.json?.services).toMatchObject({s: {total: 100, versions: [{name: 'constructor', weight: 80}, {name: 'v2', weight: 20}]}})
    const ok = await call(proxy.adminUrl, 'PUT', '/api/services/s/weights', {body: '{"v2": 1000000}', headers: {...json(), 'content-type': 'Application/JSON; charset=utf-8'}})
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({total: 1_000_080, versions: [{name: 'constructor', weight: 80}, {name: 'v2', weight: 1_000_000}]})
  })

  it('refuses malformed paths, targets and query parameters with 400', async () => {
    const {proxy} = await setup()
    const since = Date.now() - 1000
    const cases: [string, string, number, RegExp][] = [
      ['GET', '/api/services/%zz/stats?since=0', 400, /malformed percent-escape/],
      ['GET', '/api/services/s%/stats?since=0', 400, /malformed percent-escape/],
      ['GET', '/api/services/%E0%A4%A/stats?since=0', 400, /malformed percent-escape/],
      ['PUT', '/api/services/%ff/weights', 400, /malformed percent-escape/],
      ['GET', '/api/services/%73/stats?since=0', 200, /./],
      ['GET', '/api/services/toString/stats?since=0', 404, /service toString: not found/],
      ['GET', '/api/services/s/stats', 400, /since=<epoch milliseconds> is required/],
      ['GET', '/api/services/s/stats?since=', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=abc', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=-1', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=1e3', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=1.5', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=0x10', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=%20123', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=99999999999999999999', 400, /is not epoch milliseconds/],
      ['GET', '/api/services/s/stats?since=9999999999999999', 400, /is in the future/],
      ['GET', `/api/services/s/stats?since=${Date.now() + 3_600_000}`, 400, /is in the future/],
      ['GET', `/api/services/s/stats?since=${since}&since=${since}`, 400, /more than once/],
      ['GET', `/api/services/s/stats?since=${since}&sinse=1`, 400, /unknown query parameter "sinse" \(allowed: since\)/],
      ['GET', '/api/state?x=1', 400, /unknown query parameter "x" \(this endpoint takes none\)/],
      ['POST', '/api/reload?force=1', 400, /unknown query parameter "force"/],
      ['PUT', '/api/services/s/weights?dry=1', 400, /unknown query parameter "dry"/],
      ['GET', '//api/state', 400, /is not a path/],
      ['GET', 'http://admin/api/state', 400, /is not a path/],
      ['GET', '*', 400, /is not a path/],
      ['DELETE', '/api/services/s/weights', 405, /DELETE is not allowed/],
      ['GET', '/api/services/s/weights', 405, /not allowed/],
      ['GET', '/api/nope', 404, /no admin endpoint/],
    ]
    for (const [method, path, status, reason] of cases) {
      const reply = await call(proxy.adminUrl, method, path, {headers: json(), ...(method === 'PUT' ? {body: '{"v2": 30}'} : {})})
      expect(reply.status, `${method} ${path}`).toBe(status)
      expect(String(reply.json?.error ?? reply.text), `${method} ${path}`).toMatch(reason)
    }
    // A bad request on a keep-alive connection leaves it usable.
    const agent = new Agent({keepAlive: true, maxSockets: 1})
    cleanups.push(() => agent.destroy())
    expect((await call(proxy.adminUrl, 'GET', '/api/services/%zz/stats?since=0', {headers: json(), agent})).status).toBe(400)
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: json(), agent})).status).toBe(200)
  })

  it('fuzzes every endpoint and parameter: only documented statuses, JSON reasons, and no change unless a 200', async () => {
    const {proxy} = await setup()
    let seed = 0x9e3779b9
    const random = () => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) / 2 ** 32
    }
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
    const pieces = ['%', '%2', '%zz', '%00', '%2f', '%c3%28', '..', '.', '', 's', 'S', 'constructor', '__proto__', 'x'.repeat(300), '%C3%A9', '%F0%9F%98%80', ';', '#']
    const services = ['s', ...pieces]
    const sinceValues = ['', '0', '-0', '1', String(Date.now()), String(2 ** 53), '1e9', 'NaN', 'Infinity', '+5', '%205', '5%20', '%D9%A3', '0'.repeat(40), String(Date.now() + 10 * 60_000), '%31', '[]']
    const bodies = ['{"v2": 30}', '{"constructor": 10}', '{"v2": 3e15}', '{"v2": -0}', '{"v2": 0}', '{"constructor": 0, "v2": 0}', '{"v2": 1.0}', '{"v2": 1.0000000000000002}', '{"v2": 1E2}', '{"v2": "1"}', '[', '{"a":{"b":{"c":[]}}}', '\u0000', '{"v2":\t7}', '{"v2": 7, "v2": -7}', `{"v2": ${'9'.repeat(400)}}`]
    const methods = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS']
    const allowed = new Set([200, 400, 401, 403, 404, 405, 413, 415])
    let expectedWeights: Record<string, number> = {constructor: 80, v2: 20}
    for (let i = 0; i < 400; i++) {
      const service = pick(services)
      const endpoint = pick(['weights', 'stats', 'state', 'reload', 'metrics', 'healthz', 'raw'])
      const method = pick(methods)
      let path: string
      if (endpoint === 'weights' || endpoint === 'stats') path = `/api/services/${service}/${endpoint}`
      else if (endpoint === 'raw') path = `/${pick(pieces)}/${pick(pieces)}`
      else path = endpoint === 'state' || endpoint === 'reload' ? `/api/${endpoint}` : `/${endpoint}`
      if (random() < 0.7) path += `?${pick(['since', 'sinse', 'x', '', '%zz'])}=${pick(sinceValues)}${random() < 0.2 ? `&since=${pick(sinceValues)}` : ''}`
      const headers: Record<string, string> = {}
      if (random() < 0.9) headers.authorization = random() < 0.9 ? `Bearer ${TOKEN}` : pick(['Bearer', 'Bearer wrong', `bearer ${TOKEN}`, `Basic ${TOKEN}`])
      if (random() < 0.8) headers['content-type'] = pick(['application/json', 'text/plain', 'application/json; charset=utf-8', ''])
      const body = method === 'GET' || method === 'HEAD' ? undefined : pick(bodies)
      const reply = await call(proxy.adminUrl, method, path, {headers, ...(body === undefined ? {} : {body})})
      const label = `${method} ${path} ${body ?? ''}`
      expect(allowed.has(reply.status), `${label} → ${reply.status} ${reply.text}`).toBe(true)
      if (reply.status >= 400 && method !== 'HEAD') expect(typeof reply.json?.error, `${label} → ${reply.status} ${reply.text}`).toBe('string')
      if (reply.status === 200 && method === 'PUT') expectedWeights = {...expectedWeights, ...(JSON.parse(body!) as Record<string, number>)}
    }
    const state = await call(proxy.adminUrl, 'GET', '/api/state', {headers: json()})
    const versions = (state.json?.services as {s: {versions: {name: string; weight: number}[]}}).s.versions
    expect(Object.fromEntries(versions.map((v) => [v.name, v.weight]))).toEqual(expectedWeights)
    expect(versions.every((v) => Number.isSafeInteger(v.weight))).toBe(true)
  })

  it('without a token answers only a loopback Host (DNS rebinding)', async () => {
    const {proxy} = await setup('{ listen: 127.0.0.1:0 }')
    const port = proxy.adminAddress.port
    for (const host of ['evil.example', `evil.example:${port}`, '10.0.0.1', 'localhost.evil.example']) {
      const reply = await call(proxy.adminUrl, 'GET', '/api/state', {headers: {host}})
      expect(reply.status, host).toBe(403)
      expect(String(reply.json?.error)).toMatch(/not a loopback name/)
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, 'LOCALHOST', '[::1]:1']) expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: {host}})).status, host).toBe(200)
    expect((await call(proxy.adminUrl, 'GET', '/healthz', {headers: {host: 'evil.example'}})).status).toBe(200)
  })

  it('closes a slow admin client at the header and body timeouts (slowloris)', async () => {
    const {proxy} = await setup(`{ listen: 127.0.0.1:0, token: "\${TOKEN}" }`, 'timeouts: { clientHeadersMs: 300, clientBodyMs: 300 }\n')
    const slow = async (text: string) => {
      const socket = connect(proxy.adminAddress.port, '127.0.0.1')
      await once(socket, 'connect')
      socket.write(text)
      let received = ''
      socket.on('data', (c: Buffer) => (received += c.toString()))
      await once(socket, 'close')
      return received
    }
    expect(await slow('GET /api/state HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1')).toMatch(/^HTTP\/1\.1 408/)
    expect(await slow(`PUT /api/services/s/weights HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"v2"`)).toMatch(/^HTTP\/1\.1 408/)
  })
})

describe('admin token rotation on reload', () => {
  it('applies a new token at once: the old one is refused, even on an open connection', async () => {
    const {proxy, file, v1, v2} = await setup()
    const agent = new Agent({keepAlive: true, maxSockets: 1})
    cleanups.push(() => agent.destroy())
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: json(), agent})).status).toBe(200)
    writeFileSync(file, yaml(v1, v2, '{ listen: 127.0.0.1:0, token: new-token }'))
    expect((await call(proxy.adminUrl, 'POST', '/api/reload', {headers: json(), agent})).json).toEqual({generation: 2})
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: json(), agent})).status).toBe(401)
    expect((await call(proxy.adminUrl, 'GET', '/metrics', {headers: json()})).status).toBe(401)
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: json('new-token'), agent})).status).toBe(200)
    // metricsAuth changes on reload too.
    writeFileSync(file, yaml(v1, v2, '{ listen: 127.0.0.1:0, token: new-token, metricsAuth: false }'))
    await proxy.reload()
    expect((await call(proxy.adminUrl, 'GET', '/metrics', {headers: {}})).status).toBe(200)
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: {}})).status).toBe(401)
  })

  it('refuses a reload that drops the token of a non-loopback admin listener, keeping the old token', async () => {
    const v1 = await startUpstream('v1')
    const v2 = await startUpstream('v2')
    cleanups.push(() => v1.close(), () => v2.close())
    const dir = mkdtempSync(join(tmpdir(), 'canary-admin-rotate-'))
    cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
    const file = join(dir, 'proxy.yaml')
    writeFileSync(file, yaml(v1, v2, `{ listen: "0.0.0.0:0", token: ${TOKEN} }`))
    const proxy = await start(await loadProxyConfig(file, {}), {configFile: file, env: {}})
    cleanups.push(() => proxy.close())
    const admin = `http://127.0.0.1:${proxy.adminAddress.port}`
    // The new file moves the admin listener to loopback (that applies only after a restart) and drops the token.
    writeFileSync(file, yaml(v1, v2, '{ listen: 127.0.0.1:0 }'))
    const refused = await call(admin, 'POST', '/api/reload', {headers: json()})
    expect(refused.status).toBe(400)
    expect(String(refused.json?.error)).toMatch(/reload refused: the admin API listens on 0\.0\.0\.0:\d+, which is not loopback, and the new config has no admin.token/)
    await expect(proxy.reload()).rejects.toBeInstanceOf(ConfigError)
    expect(proxy.generation).toBe(1)
    expect((await call(admin, 'GET', '/api/state', {headers: {}})).status).toBe(401)
    expect((await call(admin, 'GET', '/api/state', {headers: json()})).status).toBe(200)
    // Rotating to another token is accepted.
    writeFileSync(file, yaml(v1, v2, '{ listen: "0.0.0.0:0", token: rotated }'))
    expect((await call(admin, 'POST', '/api/reload', {headers: json()})).status).toBe(200)
    expect((await call(admin, 'GET', '/api/state', {headers: json()})).status).toBe(401)
    expect((await call(admin, 'GET', '/api/state', {headers: json('rotated')})).status).toBe(200)
  })

  it('programmatic reload applies the token too', async () => {
    const {proxy, v1, v2} = await setup()
    await proxy.reload(config(yaml(v1, v2, '{ listen: 127.0.0.1:0, token: other }')))
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: json()})).status).toBe(401)
    expect((await call(proxy.adminUrl, 'GET', '/api/state', {headers: json('other')})).status).toBe(200)
  })
})
