// Upgrade (WebSocket) tunnels: the upstream's answer to the upgrade is bounded by
// timeouts.responseHeadersMs (504, docs/proxy.md), and a slow answer is not a connect failure.
import {once} from 'node:events'
import {createServer, type Socket} from 'node:net'

import {afterEach, describe, expect, it} from 'vitest'

import {config, get, sendRaw, start} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

/** A TCP server that accepts, answers plain requests and never answers an upgrade. */
async function silentOnUpgrade(): Promise<{url: string; upgrades: () => number}> {
  let upgrades = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.on('data', (chunk: Buffer) => {
      if (/\r\nupgrade:/i.test(chunk.toString('latin1'))) {
        upgrades++
        return
      }
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const {port} = server.address() as {port: number}
  return {url: `http://127.0.0.1:${port}`, upgrades: () => upgrades}
}

describe('upgrade timeouts', () => {
  it('answers 504 when the upstream does not answer the upgrade in responseHeadersMs, and keeps the server in', async () => {
    const upstream = await silentOnUpgrade()
    const proxy = await start(
      config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
timeouts: { connectMs: 100, responseHeadersMs: 400 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${upstream.url}] }]
`),
    )
    cleanups.push(() => proxy.close())
    const answer = await sendRaw(proxy.address.port, 'GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')
    expect(upstream.upgrades()).toBe(1)
    expect(answer.status).toBe(504)
    // Connecting worked: the server must still be healthy and take the next request.
    expect(proxy.state().services.s?.versions[0]?.servers[0]?.healthy).toBe(true)
    expect((await get(`${proxy.url}/`)).status).toBe(200)
  })
})
