import {once} from 'node:events'
import {connect} from 'node:net'

import {afterEach, describe, expect, it} from 'vitest'

import {config, eventually, get, start, startUpstream} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

describe('health and client protection', () => {
  it('takes a server out when its active health check fails and brings it back when it passes', async () => {
    let v2Healthy = true
    const v1 = await startUpstream('v1')
    const v2 = await startUpstream('v2', (req, res) => {
      if (req.url === '/healthz') res.writeHead(v2Healthy ? 200 : 503).end()
      else res.end('v2')
    })
    cleanups.push(() => v1.close(), () => v2.close())
    const proxy = await start(
      config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: v1, weight: 50, servers: [${v1.url}] }
      - { name: v2, weight: 50, servers: [${v2.url}] }
    healthCheck: { path: /healthz, intervalMs: 50, timeoutMs: 500 }
`),
    )
    cleanups.push(() => proxy.close())
    v2Healthy = false
    await eventually(() => proxy.state().services.s?.versions[1]?.healthy === false)
    const texts = new Set<string>()
    for (let i = 0; i < 10; i++) texts.add((await get(`${proxy.url}/`)).text)
    expect(texts).toEqual(new Set(['v1']))
    v2Healthy = true
    await eventually(() => proxy.state().services.s?.versions[1]?.healthy === true)
    for (let i = 0; i < 10; i++) texts.add((await get(`${proxy.url}/`)).text)
    expect(texts).toEqual(new Set(['v1', 'v2']))
  })

  it('answers 408 and closes a connection whose request head does not arrive in time (slowloris)', async () => {
    const v1 = await startUpstream('v1')
    cleanups.push(() => v1.close())
    const proxy = await start(
      config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
timeouts: { clientHeadersMs: 200 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${v1.url}] }]
`),
    )
    cleanups.push(() => proxy.close())
    const socket = connect(proxy.address.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write('GET / HTTP/1.1\r\nhost: a\r\nx-slow: ')
    let received = ''
    socket.on('data', (c: Buffer) => (received += c.toString()))
    await once(socket, 'close')
    expect(received.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout')
    expect(v1.requests).toHaveLength(0)
  })

  it('forwards but does not mirror a body larger than maxBodyBytes', async () => {
    const v1 = await startUpstream('v1', (req, res, body) => res.end(String(body.length)))
    const shadow = await startUpstream('shadow')
    cleanups.push(() => v1.close(), () => shadow.close())
    const proxy = await start(
      config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: v1, weight: 1, servers: [${v1.url}] }
      - { name: shadow, weight: 0, servers: [${shadow.url}] }
    mirror: { version: shadow, percent: 100, maxBodyBytes: 10 }
`),
    )
    cleanups.push(() => proxy.close())
    const response = await fetch(`${proxy.url}/`, {method: 'POST', body: 'x'.repeat(100)})
    expect(await response.text()).toBe('100')
    const small = await fetch(`${proxy.url}/`, {method: 'POST', body: 'tiny'})
    expect(await small.text()).toBe('4')
    await eventually(() => shadow.requests.length === 1)
    expect(shadow.requests[0]?.body).toBe('tiny')
  })
})
