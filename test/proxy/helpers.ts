import {once} from 'node:events'
import {Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {connect, type AddressInfo} from 'node:net'
import type {Duplex} from 'node:stream'

import {parseProxyConfig, type ProxyConfig} from '../../src/proxy/config.js'
import {startProxy, type RunningProxy} from '../../src/proxy/server.js'

/** A real upstream on 127.0.0.1:0 that answers its name and records what it received. */
export interface Upstream {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly requests: {method: string; url: string; headers: IncomingMessage['headers']; body: string}[]
  readonly server: Server
  close(): Promise<void>
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void

export async function startUpstream(name: string, handler?: UpstreamHandler): Promise<Upstream> {
  const requests: Upstream['requests'] = []
  const sockets = new Set<Duplex>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({method: req.method ?? '', url: req.url ?? '', headers: req.headers, body})
      if (handler !== undefined) return handler(req, res, body)
      res.setHeader('x-upstream', name)
      res.end(name)
    })
  })
  server.on('upgrade', (_req, socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Parses a config from YAML text; listen addresses default to port 0. */
export function config(yaml: string, env: NodeJS.ProcessEnv = {}): ProxyConfig {
  return parseProxyConfig(yaml, 'test.yaml', env)
}

/** Starts a proxy with a quiet log that is kept for assertions. */
export async function start(cfg: ProxyConfig, options: Parameters<typeof startProxy>[1] = {}): Promise<RunningProxy & {events: Record<string, unknown>[]}> {
  const events: Record<string, unknown>[] = []
  const proxy = await startProxy(cfg, {log: (e) => events.push(e), ...options})
  return Object.assign(proxy, {events})
}

/** GET through the proxy with node:http (so Host can be set); returns status, text and headers. */
export function get(url: string, headers: Record<string, string> = {}): Promise<{status: number; text: string; headers: IncomingMessage['headers']}> {
  return new Promise((resolve, reject) => {
    const req = request(url, {headers, agent: keepAlive, timeout: 10_000}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers}))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no response within 10 s`)))
    req.end()
  })
}

const keepAlive = new Agent({keepAlive: true})

/** Polls `check` until it returns true or the deadline passes (no fixed sleeps). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error('condition not met before the deadline')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** What a raw exchange returned: the first response's status (0 when none) and the bytes read. */
export interface RawResponse {
  readonly status: number
  readonly head: string
  readonly body: string
  /** True when the connection closed before a complete response arrived. */
  readonly closedEarly: boolean
}

/**
 * Sends bytes on a fresh TCP connection (node:net, so anything Node's http client would refuse
 * can be sent) and resolves with the first response once its Content-Length is read, or when
 * the connection closes.
 */
export function sendRaw(port: number, bytes: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let settled = false
    const finish = (closedEarly: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      const head = end === -1 ? text : text.slice(0, end)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0)
      resolve({status, head, body: end === -1 ? '' : text.slice(end + 4), closedEarly})
    }
    const timer = setTimeout(() => {
      settled = true
      socket.destroy()
      reject(new Error(`raw request got no complete answer within ${timeoutMs} ms: ${JSON.stringify(String(bytes).slice(0, 200))}`))
    }, timeoutMs)
    socket.on('connect', () => socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes))
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end === -1) return
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))
      if (length !== null && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1])) finish(false)
    })
    socket.on('error', () => finish(true))
    socket.on('close', () => finish(true))
  })
}
