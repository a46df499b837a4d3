import {once} from 'node:events'
import {readFileSync, rmSync} from 'node:fs'
import {request} from 'node:http'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {config, eventually, get, start, startUpstream, type Upstream} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

async function upstreams(...names: string[]): Promise<Upstream[]> {
  const list = await Promise.all(names.map((n) => startUpstream(n)))
  for (const u of list) cleanups.push(() => u.close())
  return list
}

async function proxyFor(yaml: string, options: Parameters<typeof start>[1] = {}) {
  const proxy = await start(config(yaml), options)
  cleanups.push(() => proxy.close())
  return proxy
}

function twoVersions(v1: Upstream, v2: Upstream, extra = '', route = '{ name: r, service: s }') {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - ${route}
services:
  s:
    versions:
      - { name: v1, weight: 80, servers: [${v1.url}] }
      - { name: v2, weight: 20, servers: [${v2.url}] }
${extra}`
}

describe('forwarding through the proxy', () => {
  it('splits 80/20 exactly over 500 requests', async () => {
    const [v1, v2] = await upstreams('v1', 'v2')
    const proxy = await proxyFor(twoVersions(v1!, v2!))
    const counts: Record<string, number> = {}
    for (let i = 0; i < 500; i++) {
      const {text} = await get(`${proxy.url}/`)
      counts[text] = (counts[text] ?? 0) + 1
    }
    expect(counts).toEqual({v1: 400, v2: 100})
  })

  it('applies header and cookie overrides before weights', async () => {
    const [v1, v2] = await upstreams('v1', 'v2')
    const proxy = await proxyFor(twoVersions(v1!, v2!, '    canary: v2\n    header: { name: X-Canary }\n    cookie: { name: canary }\n'))
    for (let i = 0; i < 10; i++) expect((await get(`${proxy.url}/`, {'x-canary': 'always'})).text).toBe('v2')
    for (let i = 0; i < 10; i++) expect((await get(`${proxy.url}/`, {cookie: 'canary=always'})).text).toBe('v2')
    for (let i = 0; i < 10; i++) expect((await get(`${proxy.url}/`, {'x-canary': 'never', cookie: 'canary=always'})).text).toBe('v1')
  })

  it('keeps a client on its version with a sticky cookie and rewrites a cookie naming an unhealthy version', async () => {
    const [v1, v2] = await upstreams('v1', 'v2')
    const proxy = await proxyFor(twoVersions(v1!, v2!, '    sticky: { cookie: sv, maxAgeSeconds: 60, secure: true, sameSite: Strict }\n'))
    // A simple cookie jar per client.
    const clients = Array.from({length: 10}, () => ({cookie: '', versions: new Set<string>()}))
    for (let round = 0; round < 5; round++) {
      for (const client of clients) {
        const response = await get(`${proxy.url}/`, client.cookie === '' ? {} : {cookie: client.cookie})
        const setCookie = response.headers['set-cookie']?.[0]
        if (setCookie !== undefined) {
          expect(setCookie).toMatch(/^sv=[0-9a-f]{16}; Path=\/; Max-Age=60; HttpOnly; Secure; SameSite=Strict$/)
          expect(client.cookie).toBe('')
          client.cookie = setCookie.split(';')[0]!
        }
        client.versions.add(response.text)
      }
    }
    for (const client of clients) expect(client.versions.size).toBe(1)
    const onV2 = clients.find((c) => c.versions.has('v2'))!
    expect(onV2.cookie).not.toContain('v2') // opaque value
    await v2!.close()
    const response = await get(`${proxy.url}/`, {cookie: onV2.cookie})
    expect(response.status).toBe(200)
    expect(response.text).toBe('v1')
    expect(response.headers['set-cookie']?.[0]).toMatch(/^sv=[0-9a-f]{16};/)
    expect(response.headers['set-cookie']?.[0]?.split(';')[0]).not.toBe(onV2.cookie)
  })

  it('strips the prefix, edits headers, adds X-Forwarded-* and removes hop-by-hop headers', async () => {
    const [v1] = await upstreams('v1')
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - name: cheddar
    host: cheeses.local
    pathPrefix: /cheddar
    stripPrefix: true
    requestHeaders: { X-Custom-Id: test, X-Remove-Me: null }
    responseHeaders: { X-Served-By: canary, X-Upstream: "" }
    service: s
services:
  s:
    versions: [{ name: v1, servers: [${v1!.url}] }]
`)
    const response = await new Promise<{status: number; headers: Record<string, unknown>}>((resolve, reject) => {
      const req = request(`${proxy.url}/cheddar/mild?x=1`, {headers: {host: 'cheeses.local:8080', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'x-remove-me': '1', 'x-forwarded-for': '6.6.6.6'}}, (res) => {
        res.resume()
        res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers}))
      })
      req.on('error', reject)
      req.end()
    })
    expect(response.status).toBe(200)
    expect(response.headers['x-served-by']).toBe('canary')
    expect(response.headers['x-upstream']).toBeUndefined()
    const seen = v1!.requests[0]!
    expect(seen.url).toBe('/mild?x=1')
    expect(seen.headers).toMatchObject({host: 'cheeses.local:8080', 'x-custom-id': 'test', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': 'cheeses.local:8080', 'x-forwarded-proto': 'http', 'x-forwarded-port': String(proxy.address.port), 'x-real-ip': '127.0.0.1'})
    expect(seen.headers['x-hop']).toBeUndefined()
    expect(seen.headers['x-remove-me']).toBeUndefined()
  })

  it('answers 404 without a route and 403 outside the allow-list', async () => {
    const [v1] = await upstreams('v1')
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: open, host: open.local, service: s }
  - { name: closed, host: closed.local, allow: [10.0.0.0/8], service: s }
services:
  s:
    versions: [{ name: v1, servers: [${v1!.url}] }]
`)
    expect(await get(`${proxy.url}/`, {host: 'other.local'})).toMatchObject({status: 404, text: 'no route\n'})
    expect((await get(`${proxy.url}/`, {host: 'closed.local'})).status).toBe(403)
    expect((await get(`${proxy.url}/`, {host: 'open.local'})).status).toBe(200)
    expect(v1!.requests).toHaveLength(1)
  })

  it('streams request and response bodies', async () => {
    const echo = await startUpstream('echo', (req, res, body) => res.end(body))
    cleanups.push(() => echo.close())
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${echo.url}] }]
`)
    const payload = 'x'.repeat(1024 * 1024)
    const response = await fetch(`${proxy.url}/upload`, {method: 'POST', body: payload})
    expect(response.status).toBe(200)
    expect((await response.text()).length).toBe(payload.length)
  })

  it('forwards a body sent with Expect: 100-continue (curl does this for large bodies)', async () => {
    const echo = await startUpstream('echo', (req, res, body) => res.end(`${req.headers.expect ?? 'no-expect'} ${body}`))
    cleanups.push(() => echo.close())
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${echo.url}] }]
`)
    const answer = await new Promise<{status: number; text: string}>((resolve, reject) => {
      const req = request(`${proxy.url}/`, {method: 'POST', headers: {expect: '100-continue', 'content-length': '5'}}, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => (text += c.toString()))
        res.on('end', () => resolve({status: res.statusCode ?? 0, text}))
      })
      req.on('continue', () => req.end('hello'))
      req.on('error', reject)
    })
    expect(answer).toEqual({status: 200, text: 'no-expect hello'})
  })

  it('sends the share of a version with no healthy server to the others, then 503 when none is left', async () => {
    const [v1, v2] = await upstreams('v1', 'v2')
    const proxy = await proxyFor(twoVersions(v1!, v2!))
    await v2!.close()
    const statuses: number[] = []
    const texts = new Set<string>()
    for (let i = 0; i < 50; i++) {
      const r = await get(`${proxy.url}/`)
      statuses.push(r.status)
      texts.add(r.text)
    }
    expect(new Set(statuses)).toEqual(new Set([200]))
    expect(texts).toEqual(new Set(['v1']))
    const state = proxy.state()
    expect(state.services.s?.versions[1]).toMatchObject({name: 'v2', healthy: false, effectiveWeight: 0})
    await v1!.close()
    await eventually(async () => (await get(`${proxy.url}/`)).status === 503)
  })

  it('answers 504 when the upstream does not answer in time and 502 when it refuses', async () => {
    const silent = await startUpstream('silent', () => undefined)
    cleanups.push(() => silent.close())
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
timeouts: { responseHeadersMs: 200 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${silent.url}] }]
`)
    expect((await get(`${proxy.url}/`)).status).toBe(504)
    const closed = await startUpstream('gone')
    await closed.close()
    const proxy2 = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${closed.url}] }]
`)
    const response = await fetch(`${proxy2.url}/`, {method: 'POST', body: 'x'})
    expect(response.status).toBe(502)
  })

  it('aborts the upstream request when the client goes away', async () => {
    let upstreamClosed = false
    const slow = await startUpstream('slow', (req, res) => {
      res.on('close', () => (upstreamClosed = !res.writableFinished))
    })
    cleanups.push(() => slow.close())
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${slow.url}] }]
`)
    const controller = new AbortController()
    const pending = fetch(`${proxy.url}/`, {signal: controller.signal}).catch(() => undefined)
    await eventually(() => slow.requests.length === 1)
    controller.abort()
    await pending
    await eventually(() => upstreamClosed)
  })

  it('answers 431 for oversized headers and 400 for Content-Length with Transfer-Encoding', async () => {
    const [v1] = await upstreams('v1')
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
limits: { maxHeaderBytes: 2048 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${v1!.url}] }]
`)
    const raw = async (text: string) => {
      const socket = connect(proxy.address.port, '127.0.0.1')
      await once(socket, 'connect')
      socket.write(text)
      let out = ''
      socket.on('data', (c: Buffer) => (out += c.toString()))
      await once(socket, 'close')
      return out.split('\r\n')[0]
    }
    expect(await raw(`GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(4096)}\r\n\r\n`)).toBe('HTTP/1.1 431 Request Header Fields Too Large')
    expect(await raw('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request')
    expect(v1!.requests).toHaveLength(0)
  })

  it('passes WebSocket upgrades through', async () => {
    const ws = await startUpstream('ws')
    cleanups.push(() => ws.close())
    ws.server.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-path: ${req.url}\r\n\r\n`)
      socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), chunk])))
    })
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, pathPrefix: /ws, stripPrefix: true, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${ws.url}] }]
`)
    const socket = connect(proxy.address.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write('GET /ws/chat HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n')
    let received = ''
    socket.on('data', (c: Buffer) => {
      received += c.toString()
      if (received.includes('\r\n\r\n') && !received.includes('echo:')) socket.write('hello')
    })
    await eventually(() => received.includes('echo:hello'))
    expect(received).toMatch(/^HTTP\/1.1 101/)
    expect(received).toContain('x-path: /chat')
    socket.destroy()
  })

  it('mirrors a sampled share of requests and discards the mirror answers', async () => {
    const [v1] = await upstreams('v1')
    const shadow = await startUpstream('shadow', (req, res) => res.writeHead(500).end('mirror failure is invisible'))
    cleanups.push(() => shadow.close())
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: v1, weight: 100, servers: [${v1!.url}] }
      - { name: shadow, weight: 0, servers: [${shadow.url}] }
    mirror: { version: shadow, percent: 25 }
`)
    for (let i = 0; i < 20; i++) expect(await get(`${proxy.url}/m/${i}`)).toMatchObject({status: 200, text: 'v1'})
    const response = await fetch(`${proxy.url}/post`, {method: 'POST', body: 'payload'})
    expect(await response.text()).toBe('v1')
    // Counter sampling at 25 %: requests 1, 5, 9, 13, 17 and 21 (the POST, with its body).
    await eventually(() => shadow.requests.length === 6)
    expect(shadow.requests.map((r) => r.url)).toEqual(['/m/0', '/m/4', '/m/8', '/m/12', '/m/16', '/post'])
    expect(shadow.requests[5]?.body).toBe('payload')
    expect(v1!.requests.at(-1)?.body).toBe('payload')
  })

  it('writes one JSON access-log line per request', async () => {
    const [v1] = await upstreams('v1')
    const file = join(tmpdir(), `canary-access-${process.pid}-${Date.now()}.log`)
    cleanups.push(() => rmSync(file, {force: true}))
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
accessLog: { path: ${file} }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${v1!.url}] }]
`)
    await get(`${proxy.url}/a?b=1`)
    await get(`${proxy.url}/c`)
    await proxy.close()
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({client: '127.0.0.1', method: 'GET', path: '/a?b=1', status: 200, route: 'r', service: 's', version: 'v1', upstream: v1!.url, bytes: 2, retries: 0})
    expect(Object.keys(lines[0]!)).toEqual(['time', 'client', 'method', 'host', 'path', 'status', 'duration_ms', 'route', 'service', 'version', 'upstream', 'bytes', 'retries'])
  })

  it('drains an in-flight request on close', async () => {
    let release: () => void = () => undefined
    const slow = await startUpstream('slow', (req, res) => {
      release = () => res.end('done')
    })
    cleanups.push(() => slow.close())
    const proxy = await start(config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${slow.url}] }]
`))
    const pending = get(`${proxy.url}/`)
    await eventually(() => slow.requests.length === 1)
    const closing = proxy.close()
    release()
    expect(await pending).toMatchObject({status: 200, text: 'done'})
    await closing
  })
})
