// Slow clients against the real proxy on loopback, with raw sockets: slow body senders and clients
// that stop reading (paused sockets). Other clients must keep being served, the connection cap must
// answer 503 rather than hang, and no slow client may count against a version.
import {once} from 'node:events'
import {createServer, type Server} from 'node:http'
import {connect, type AddressInfo, type Socket} from 'node:net'

import {afterEach, describe, expect, it} from 'vitest'

import {config, eventually, get, start} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

const MEDIUM_BYTES = 512 * 1024
const BIG_BYTES = 16 * 1024 * 1024

/** An upstream with a quick `/`, an `/upload` that reads its body, and large `/medium` and `/big` answers. */
async function startApp(): Promise<{url: string; responsesFinished: () => number; close(): Promise<void>}> {
  let finished = 0
  const server: Server = createServer((req, res) => {
    if (req.url === '/medium' || req.url === '/big') {
      const total = req.url === '/medium' ? MEDIUM_BYTES : BIG_BYTES
      res.writeHead(200, {'content-length': total})
      res.on('finish', () => finished++)
      const chunk = Buffer.alloc(64 * 1024, 'x')
      let sent = 0
      const pump = () => {
        while (sent < total) {
          sent += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      pump()
      return
    }
    let size = 0
    req.on('data', (c: Buffer) => (size += c.length))
    req.on('end', () => res.end(req.url === '/upload' ? `got ${size}` : 'v1'))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    responsesFinished: () => finished,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function proxyYaml(upstream: string, extra: string): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
${extra}
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [${upstream}] }]
`
}

/** A raw client socket that sends `text` and then does nothing (paused: it reads nothing either). */
async function stuckClient(port: number, text: string, sockets: Socket[]): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  sockets.push(socket)
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  socket.pause()
  socket.write(text)
  return socket
}

/** A raw client that reads everything and resolves with the answer once the server closes. */
async function rawExchange(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  let received = ''
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')))
  socket.write(text)
  await once(socket, 'close')
  return received
}

async function metric(adminUrl: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  const match = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text)
  return match === null ? 0 : Number(match[1])
}

function closeAll(sockets: Socket[]): void {
  for (const socket of sockets) socket.destroy()
}

describe('slow clients', () => {
  it('keeps serving other clients while 300 slow ones are connected (150 slow body senders, 150 clients not reading)', async () => {
    const app = await startApp()
    cleanups.push(() => app.close())
    // A small cap makes exhaustion easy: without request and response buffering 8 slow clients would hold every connection.
    const proxy = await start(config(proxyYaml(app.url, 'limits: { upstreamConnections: 8, responseBufferBytes: 1048576, bufferTotalBytes: 268435456 }\ntimeouts: { clientBodyMs: 60000, clientSendMs: 60000 }')))
    cleanups.push(() => proxy.close())
    const port = proxy.address.port
    const sockets: Socket[] = []
    cleanups.push(() => closeAll(sockets))
    const since = Date.now()

    for (let i = 0; i < 150; i++) await stuckClient(port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n${'b'.repeat(100)}`, sockets)
    for (let i = 0; i < 150; i++) await stuckClient(port, 'GET /medium HTTP/1.1\r\nHost: a\r\n\r\n', sockets)
    // Every slow reader's response left the upstream in full (the proxy holds what the client does
    // not take), and every slow sender's body is being read into memory.
    await eventually(() => app.responsesFinished() === 150, 30_000)
    await eventually(async () => (await metric(proxy.adminUrl, /canary_proxy_buffered_bytes/)) >= 150 * 10_000, 10_000)

    const answers = await Promise.all(Array.from({length: 200}, () => get(`${proxy.url}/`)))
    expect(answers.map((a) => `${a.status} ${a.text}`)).toEqual(Array.from({length: 200}, () => '200 v1'))
    const upload = await fetch(`${proxy.url}/upload`, {method: 'POST', body: 'x'.repeat(5000)})
    expect(await upload.text()).toBe('got 5000')
    // A second round of slow readers while the first still sits there: still served in full upstream.
    const big = await fetch(`${proxy.url}/medium`)
    expect((await big.arrayBuffer()).byteLength).toBe(MEDIUM_BYTES)

    expect(sockets.filter((s) => s.destroyed)).toHaveLength(0)
    expect(await metric(proxy.adminUrl, /canary_proxy_upstream_active_requests\{upstream="[^"]+"\}/)).toBe(0)
    expect(await metric(proxy.adminUrl, /canary_proxy_upstream_rejected_total\{upstream="[^"]+",reason="queue_timeout"\}/)).toBe(0)
    const stats = (await (await fetch(`${proxy.adminUrl}/api/services/s/stats?since=${since}`)).json()) as {versions: {v1: {errors: number; codes: Record<string, number>}}}
    expect(stats.versions.v1.errors).toBe(0)
  })

  it('holds what a client does not read, up to responseBufferBytes, so its upstream connection is freed', async () => {
    const app = await startApp()
    cleanups.push(() => app.close())
    // 16 MiB answers: more than loopback's socket buffers take (up to ~4 MiB), so the proxy's own buffer is what frees the connection.
    const proxy = await start(config(proxyYaml(app.url, 'limits: { upstreamConnections: 2, responseBufferBytes: 16777216, bufferTotalBytes: 268435456 }\ntimeouts: { clientSendMs: 60000 }')))
    cleanups.push(() => proxy.close())
    const sockets: Socket[] = []
    cleanups.push(() => closeAll(sockets))
    for (let i = 0; i < 6; i++) await stuckClient(proxy.address.port, 'GET /big HTTP/1.1\r\nHost: a\r\n\r\n', sockets)
    await eventually(() => app.responsesFinished() === 6, 30_000)
    expect(await metric(proxy.adminUrl, /canary_proxy_buffered_bytes/)).toBeGreaterThan(6 * 4 * 1024 * 1024)
    expect(await metric(proxy.adminUrl, /canary_proxy_upstream_active_requests\{upstream="[^"]+"\}/)).toBe(0)
    expect(await get(`${proxy.url}/`)).toMatchObject({status: 200, text: 'v1'})
    // Each client still gets its whole answer when it reads at last.
    const received = sockets.map((socket) => {
      let bytes = 0
      socket.on('data', (c: Buffer) => (bytes += c.length))
      socket.resume()
      return () => bytes
    })
    await eventually(() => received.every((bytes) => bytes() > BIG_BYTES), 30_000)
    await eventually(async () => (await metric(proxy.adminUrl, /canary_proxy_buffered_bytes/)) === 0)
  })

  it('answers 503 while clients not reading big responses hold every connection, cuts them after clientSendMs, and never charges the version', async () => {
    const app = await startApp()
    cleanups.push(() => app.close())
    const proxy = await start(config(proxyYaml(app.url, 'limits: { upstreamConnections: 4, upstreamQueue: 8, responseBufferBytes: 65536 }\ntimeouts: { clientSendMs: 1500, upstreamQueueMs: 300 }')))
    cleanups.push(() => proxy.close())
    const port = proxy.address.port
    const sockets: Socket[] = []
    cleanups.push(() => closeAll(sockets))
    const since = Date.now()
    for (let i = 0; i < 4; i++) await stuckClient(port, 'GET /big HTTP/1.1\r\nHost: a\r\n\r\n', sockets)
    await eventually(async () => (await metric(proxy.adminUrl, /canary_proxy_upstream_active_requests\{upstream="[^"]+"\}/)) === 4)

    // Every connection is held: a request waits upstreamQueueMs and gets 503, never hangs; beyond
    // the queue bound the answer is 503 at once.
    const burst = await Promise.all(Array.from({length: 20}, () => get(`${proxy.url}/`)))
    expect(burst.every((a) => a.status === 503 && a.text === 'upstream busy\n')).toBe(true)
    const full = await metric(proxy.adminUrl, /canary_proxy_upstream_rejected_total\{upstream="[^"]+",reason="queue_full"\}/)
    const timedOut = await metric(proxy.adminUrl, /canary_proxy_upstream_rejected_total\{upstream="[^"]+",reason="queue_timeout"\}/)
    // At most 8 wait at a time; which of the 20 arrive while the queue is full depends on timing.
    expect(full + timedOut).toBe(20)
    expect(full).toBeGreaterThanOrEqual(1)
    expect(timedOut).toBeGreaterThanOrEqual(8)

    // The stuck readers are cut after clientSendMs without progress; the service recovers.
    await eventually(async () => (await metric(proxy.adminUrl, /canary_proxy_client_errors_total\{reason="send_timeout"\}/)) === 4, 15_000)
    // Their connections were closed: reading now drains what was sent, then the end.
    for (const socket of sockets) socket.resume()
    await eventually(() => sockets.every((s) => s.closed), 5000)
    expect(await get(`${proxy.url}/`)).toMatchObject({status: 200, text: 'v1'})
    expect(await metric(proxy.adminUrl, /canary_proxy_upstream_active_requests\{upstream="[^"]+"\}/)).toBe(0)

    // Neither the 503s nor the cut readers are the version's: they are recorded without one.
    const stats = (await (await fetch(`${proxy.adminUrl}/api/services/s/stats?since=${since}`)).json()) as {versions: {v1: {requests: number; errors: number}}}
    expect(stats.versions.v1).toMatchObject({requests: 1, errors: 0})
    expect(await metric(proxy.adminUrl, /canary_proxy_requests_total\{route="r",service="s",version="",code="503"\}/)).toBe(20)
    expect(await metric(proxy.adminUrl, /canary_proxy_requests_total\{route="r",service="s",version="",code="499"\}/)).toBe(4)
  })

  it('answers 408 to a body that stops arriving, buffered or streamed, and frees the connection', async () => {
    const app = await startApp()
    cleanups.push(() => app.close())
    const proxy = await start(config(proxyYaml(app.url, 'limits: { upstreamConnections: 2, requestBufferBytes: 1024 }\ntimeouts: { clientBodyMs: 400 }')))
    cleanups.push(() => proxy.close())
    const port = proxy.address.port
    const since = Date.now()
    // Buffered (100 of 500 bytes sent), then streamed (Content-Length above requestBufferBytes), then chunked.
    const buffered = rawExchange(port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 500\r\n\r\n${'b'.repeat(100)}`)
    const streamed = rawExchange(port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'b'.repeat(2000)}`)
    const chunked = rawExchange(port, `POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n${'c'.repeat(16)}\r\n`)
    for (const answer of await Promise.all([buffered, streamed, chunked])) expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*connection: close/i)
    expect(await metric(proxy.adminUrl, /canary_proxy_client_errors_total\{reason="body_timeout"\}/)).toBe(3)
    expect(await metric(proxy.adminUrl, /canary_proxy_upstream_active_requests\{upstream="[^"]+"\}/)).toBe(0)
    // A client sending slowly but steadily is not cut: 10 chunks, each well within clientBodyMs.
    const steady = connect(port, '127.0.0.1')
    await once(steady, 'connect')
    steady.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n')
    let answer = ''
    steady.on('data', (c: Buffer) => (answer += c.toString()))
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100))
      steady.write('s'.repeat(300))
    }
    await eventually(() => answer.includes('got 3000'))
    steady.destroy()
    expect(await get(`${proxy.url}/`)).toMatchObject({status: 200, text: 'v1'})
    const stats = (await (await fetch(`${proxy.adminUrl}/api/services/s/stats?since=${since}`)).json()) as {versions: {v1: {requests: number; errors: number; codes: Record<string, number>}}}
    expect(stats.versions.v1).toMatchObject({requests: 2, errors: 0, codes: {'4xx': 0}})
  })

  it('lets requests waiting at the cap finish on the old pool when a reload replaces the pools', async () => {
    let release: () => void = () => undefined
    const released = new Promise<void>((r) => (release = r))
    let arrived = 0
    const server = createServer((req, res) => {
      arrived++
      void released.then(() => res.end('v1'))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    cleanups.push(() => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    }))
    const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const proxy = await start(config(proxyYaml(upstream, 'limits: { upstreamConnections: 1 }\ntimeouts: { upstreamQueueMs: 30000 }')))
    cleanups.push(() => proxy.close())
    const answers = Promise.all(Array.from({length: 3}, () => get(`${proxy.url}/`)))
    await eventually(async () => arrived === 1 && (await metric(proxy.adminUrl, /canary_proxy_upstream_queued_requests\{upstream="[^"]+"\}/)) === 2)
    // New pool settings (another timeout): the old pool and its gate are replaced.
    await proxy.reload(config(proxyYaml(upstream, 'limits: { upstreamConnections: 1 }\ntimeouts: { upstreamQueueMs: 30000, responseBodyMs: 20000 }')))
    release()
    expect((await answers).map((a) => `${a.status} ${a.text}`)).toEqual(['200 v1', '200 v1', '200 v1'])
  })

  it('validates the limits and timeouts', () => {
    const cases: [string, RegExp][] = [
      ['timeouts: { clientBodyMs: 0 }', /timeouts\.clientBodyMs/],
      ['timeouts: { clientSendMs: 3000000000 }', /timeouts\.clientSendMs: expected at most 86400000/],
      ['timeouts: { upstreamQueueMs: 1.5 }', /timeouts\.upstreamQueueMs/],
      ['timeouts: { drainMs: 2147483648 }', /timeouts\.drainMs/],
      ['limits: { upstreamQueue: -1 }', /limits\.upstreamQueue/],
      ['limits: { upstreamConnections: 0 }', /limits\.upstreamConnections/],
      ['limits: { requestBufferBytes: "64k" }', /limits\.requestBufferBytes/],
      ['limits: { responseBufferBytes: 1e12 }', /limits\.responseBufferBytes/],
      ['limits: { bufferTotalBytes: -5 }', /limits\.bufferTotalBytes/],
    ]
    for (const [extra, problem] of cases) {
      expect(() => config(proxyYaml('http://127.0.0.1:1', extra)), extra).toThrow()
      try {
        config(proxyYaml('http://127.0.0.1:1', extra))
      } catch (error) {
        expect((error as {problems: {path: string; message: string}[]}).problems.map((p) => `${p.path}: ${p.message}`).join('\n'), extra).toMatch(problem)
      }
    }
    const defaults = config(proxyYaml('http://127.0.0.1:1', ''))
    expect(defaults.timeouts).toMatchObject({clientBodyMs: 30_000, clientSendMs: 30_000, upstreamQueueMs: 5000})
    expect(defaults.limits).toMatchObject({upstreamConnections: 128, upstreamQueue: 1024, requestBufferBytes: 65_536, responseBufferBytes: 262_144, bufferTotalBytes: 67_108_864})
  })
})
