/**
 * Request-line and header fuzzing of the real proxy (issue #12): a seed corpus of request heads,
 * deterministic seeded mutations (a fixed PRNG, so a failure replays; CANARY_FUZZ_SEED and
 * CANARY_FUZZ_CASES explore further), sent as raw bytes over node:net to the proxy on loopback,
 * in front of a real upstream that records every request and upgrade it receives. Checked:
 * - the proxy never crashes or hangs, and keeps serving afterwards;
 * - no answer is a 5xx (the upstream never fails) except 501 for CONNECT, and no version is
 *   charged an error;
 * - no request reaches the upstream on a path or host the allow-list guards, even read by a
 *   lenient upstream (all escapes decoded, `\` as `/`, `;params` dropped, dots resolved);
 * - the upstream only receives normalised origin-form targets and a normalised Host.
 */
import {once} from 'node:events'
import {createServer, type IncomingMessage} from 'node:http'
import {connect, type AddressInfo, type Socket} from 'node:net'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {config, get, start} from './helpers.js'
import {mulberry32} from '../../src/rollout/core/sequential.js'

const SEED = Number(process.env.CANARY_FUZZ_SEED ?? 20261129)
const CASES = Number(process.env.CANARY_FUZZ_CASES ?? 3000)
const CONCURRENCY = 16
const MARKER = 'GET /__end HTTP/1.1\r\nHost: shop.local\r\nConnection: close\r\n\r\n'

const prng = mulberry32

const SEED_CORPUS: string[] = [
  'GET / HTTP/1.1\r\nHost: shop.local\r\n\r\n',
  'GET /internal/secret HTTP/1.1\r\nHost: shop.local\r\n\r\n',
  'GET /x/../internal/secret HTTP/1.1\r\nHost: shop.local\r\nX-Canary: always\r\n\r\n',
  'GET http://shop.local/internal/secret HTTP/1.1\r\nHost: shop.local\r\n\r\n',
  'GET //internal/secret?x=1 HTTP/1.1\r\nHost: shop.local\r\nCookie: canary=always\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: admin.local\r\n\r\n',
  'POST /api/items HTTP/1.1\r\nHost: shop.local\r\nContent-Length: 5\r\nX-Canary: always\r\n\r\nhello',
  'POST /api/items HTTP/1.1\r\nHost: shop.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: shop.local\r\n\r\n',
  'CONNECT shop.local:443 HTTP/1.1\r\nHost: shop.local:443\r\n\r\n',
  'HEAD /a/b/c HTTP/1.0\r\n\r\n',
  'GET /ws HTTP/1.1\r\nHost: shop.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  'DELETE /api/items/1?force=true HTTP/1.1\r\nHost: shop.local:8080\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n',
]

const PATH_ATOMS = ['internal', 'secret', 'x', 'api', '..', '.', '', '%2e', '%2E', '%2e%2e', '.%2E', '%2F', '%2f', '%5C', '\\', ';', '..;', ';x=1', '%00', '%0a', '%C0%AE', '%c0%ae%c0%ae', '%E0%80%AE', '%69nternal', 'intern%61l', '%25', '%252e', '%25%32%65', '%2525', '%', '%zz', '%C3%A9', '#', '?', '?a=/../internal', '%3F', '~', '%7E', '"', '<', '|', '{', '[', ']', '*', '@', ':', 'INTERNAL', 'internals', '%20', '+']
const HOST_ATOMS = ['shop.local', 'admin.local', 'ADMIN.LOCAL', 'admin.local.', 'admin.local:80', 'admin.local..', '[::1]', '[::1]:80', '[x', '[zz::1]', '', 'a b', 'a:99999', 'u@admin.local', 'admin%2elocal', 'admin.local, shop.local', '127.0.0.1', 'shop.local:', '*.local', 'admin_local']
const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'PRI', 'G\u0000ET', '']
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/1.1 x', '']
const HEADER_ATOMS = ['X-Canary: always', 'X-Canary: never', 'Cookie: canary=always', 'Cookie: sv=0000000000000000', 'X-Forwarded-For: 10.1.2.3', 'X-Real-Ip: 10.1.2.3', 'Host: admin.local', 'host: shop.local', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked, gzip', 'Content-Length: 0', 'Content-Length: 3', 'Content-Length: -1', 'Content-Length: 1, 2', 'Expect: 100-continue', 'Connection: close', 'Connection: keep-alive, X-Canary', 'Upgrade: websocket', 'X-Long: ' + 'a'.repeat(300), 'X-Bad Name: 1', 'X-Obs: a\r\n b', ': empty', 'X-Empty:']
const BYTES = ['\u0000', '\r', '\n', '\t', ' ', '\u007f', '\u0080', '\u00ff', ':', '%', '/', '\\', '?', '#', ';', '.']

/** One mutation of a request head; each picks from the atoms above with the seeded PRNG. */
function mutate(input: string, random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const [head = '', ...rest] = input.split('\r\n\r\n')
  const body = rest.join('\r\n\r\n')
  const lines = head.split('\r\n')
  const [method = 'GET', target = '/', version = 'HTTP/1.1'] = (lines[0] ?? '').split(' ')
  const withRequestLine = (m: string, t: string, v: string) => [`${m} ${t}${v === '' ? '' : ` ${v}`}`, ...lines.slice(1)].join('\r\n') + '\r\n\r\n' + body
  // Path mutations are drawn three times as often as the others: the path is what routing reads.
  const choice = Math.floor(random() * 13)
  switch (choice >= 11 ? 0 : choice) {
    case 0: {
      const segments = Array.from({length: 1 + Math.floor(random() * 6)}, () => Array.from({length: 1 + Math.floor(random() * 2)}, () => pick(PATH_ATOMS)).join(''))
      return withRequestLine(method, `/${segments.join('/')}`, version)
    }
    case 1: {
      const at = Math.floor(random() * input.length)
      return input.slice(0, at) + pick(BYTES) + input.slice(at)
    }
    case 2: {
      const at = Math.floor(random() * input.length)
      return input.slice(0, at) + input.slice(at + 1 + Math.floor(random() * 4))
    }
    case 3: {
      const line = lines.length > 1 ? pick(lines.slice(1)) : 'Host: shop.local'
      return [...lines, line].join('\r\n') + '\r\n\r\n' + body
    }
    case 4:
      return withRequestLine(pick(METHODS), target, version)
    case 5:
      return withRequestLine(method, target, pick(VERSIONS))
    case 6: {
      const host = pick(HOST_ATOMS)
      const kept = lines.slice(1).filter((l) => !/^host:/i.test(l))
      return [lines[0], ...kept, `Host: ${host}`].join('\r\n') + '\r\n\r\n' + body
    }
    case 7: {
      const authority = pick(HOST_ATOMS)
      const path = random() < 0.5 ? target : `/${pick(PATH_ATOMS)}/${pick(PATH_ATOMS)}`
      return withRequestLine(method, `${pick(['http', 'HTTP', 'https', 'ftp', 'http:'])}://${authority}${path === '*' ? '' : path}`, version)
    }
    case 8:
      return [...lines, pick(HEADER_ATOMS)].join('\r\n') + '\r\n\r\n' + body
    case 9:
      return input.replace(/\r\n/g, pick(['\n', '\r\n', '\r', '\r\r\n']))
    default:
      return withRequestLine(method, `${target}${pick(['?', '?%', '?a=%2e%2e/', '#x', '?a b', '?\u0001'])}`, version)
  }
}

/** What a request that reached the upstream looked like there. */
interface Received {
  readonly kind: 'request' | 'upgrade'
  readonly url: string
  readonly host: string | undefined
  /** The case that sent it (from the X-Fuzz-Case header the test adds). */
  readonly sentAs: string
}

/** How a lenient upstream might read a path: every escape decoded, `\` as `/`, `;params` dropped, dots resolved, slashes merged. */
function lenientRead(path: string): string {
  let decoded = path
  for (let i = 0; i < 3; i++) decoded = decoded.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  decoded = decoded.replace(/\\/g, '/').replace(/\u00c0\u00ae/g, '.')
  const out: string[] = []
  for (const raw of decoded.split('/')) {
    const segment = raw.split(';')[0]!
    if (segment === '' || segment === '.') continue
    if (segment === '..') out.pop()
    else out.push(segment)
  }
  return `/${out.join('/')}`
}

function reachesInternal(path: string): boolean {
  const read = lenientRead(path)
  return read === '/internal' || read.startsWith('/internal/')
}

/** Independent of request-target.ts: the shape every forwarded path must have. */
function normalisedOriginFormProblem(url: string): string | undefined {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (!path.startsWith('/')) return 'not origin form'
  if (/\/\//.test(path)) return 'empty segment'
  if (/(^|\/)\.\.?(\/|$)/.test(path)) return 'dot segment'
  // Only unreserved characters, sub-delims but ";", ":", "@", "/" and "%" may appear raw.
  if (!/^[A-Za-z0-9._~!$&'()*+,=:@/%-]*$/.test(path)) return 'character not allowed in a normalised path'
  for (const match of path.matchAll(/%(..)/g)) {
    const hex = match[1]!
    if (!/^[0-9A-F]{2}$/.test(hex)) return `escape %${hex} is not uppercase hex`
    const byte = parseInt(hex, 16)
    if (/[A-Za-z0-9._~-]/.test(String.fromCharCode(byte))) return `unreserved character escaped (%${hex})`
    if (byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f) return `forbidden escape %${hex}`
  }
  if (/%(?![0-9A-F]{2})/.test(path)) return 'bare %'
  return undefined
}

describe(`adversarial fuzzing of the request line and headers (seed ${SEED}, ${CASES} cases)`, () => {
  const received: Received[] = []
  let upstreamUrl = ''
  let closeUpstream: () => Promise<void> = async () => undefined
  let proxy: Awaited<ReturnType<typeof start>>
  const cases: string[] = []

  beforeAll(async () => {
    const sockets = new Set<Socket>()
    const record = (kind: Received['kind'], req: IncomingMessage) => {
      const id = req.headers['x-fuzz-case']
      received.push({kind, url: req.url ?? '', host: req.headers.host, sentAs: typeof id === 'string' ? (cases[Number(id)] ?? id) : 'the marker or an unlabelled case'})
    }
    const server = createServer((req, res) => {
      record('request', req)
      req.resume()
      req.on('end', () => res.end('ok'))
    })
    server.on('connection', (s) => {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    })
    server.on('upgrade', (req, socket: Socket) => {
      record('upgrade', req)
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    closeUpstream = () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
    proxy = await start(
      config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
timeouts: { clientHeadersMs: 2000 }
routes:
  - { name: internal, pathPrefix: /internal, allow: [10.0.0.0/8], service: s }
  - { name: admin, host: admin.local, allow: [10.0.0.0/8], service: s }
  - { name: all, service: s }
services:
  s:
    versions:
      - { name: v1, weight: 50, servers: [${upstreamUrl}] }
      - { name: v2, weight: 50, servers: [${upstreamUrl}] }
    canary: v2
    header: { name: X-Canary }
    cookie: { name: canary }
    sticky: { cookie: sv }
`),
    )
  })

  afterAll(async () => {
    await proxy?.close()
    await closeUpstream()
  })

  /**
   * Sends one case followed by a marker request with `Connection: close`, and reads until the
   * proxy closes the connection. The marker ends every case without timing: it is answered after
   * a complete case, or completes (and closes) an incomplete one, or makes it malformed (400).
   * Half-closing instead would not do: Node's server aborts in-flight requests on a client FIN.
   */
  function exchange(bytes: string): Promise<{statuses: number[]; text: string}> {
    return new Promise((resolve, reject) => {
      const socket = connect(proxy.address.port, '127.0.0.1')
      const chunks: Buffer[] = []
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`proxy did not close the connection within 8 s for ${JSON.stringify(bytes)}`))
      }, 8000)
      socket.on('connect', () => socket.write(Buffer.from(bytes + MARKER, 'latin1')))
      socket.on('data', (c: Buffer) => chunks.push(c))
      socket.on('error', () => undefined)
      socket.on('close', () => {
        clearTimeout(timer)
        const text = Buffer.concat(chunks).toString('latin1')
        resolve({statuses: [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1])), text})
      })
    })
  }

  it('never crashes, hangs, answers 5xx, charges a version, or forwards a guarded or unnormalised target', {timeout: 240_000}, async () => {
    const random = prng(SEED)
    for (let i = 0; i < CASES; i++) {
      let request = SEED_CORPUS[Math.floor(random() * SEED_CORPUS.length)]!
      const rounds = 1 + Math.floor(random() * 2)
      for (let r = 0; r < rounds; r++) request = mutate(request, random)
      // Label the case so what reaches the upstream can be traced back to it.
      const eol = request.indexOf('\n')
      cases.push(eol === -1 ? request : `${request.slice(0, eol + 1)}X-Fuzz-Case: ${i}\r\n${request.slice(eol + 1)}`)
    }
    const statusCounts: Record<string, number> = {}
    const fiveHundreds: string[] = []
    let next = 0
    const worker = async () => {
      while (next < cases.length) {
        const request = cases[next++]!
        const {statuses} = await exchange(request)
        const first = statuses[0] ?? 0
        statusCounts[first] = (statusCounts[first] ?? 0) + 1
        for (const status of statuses) {
          const connectCase = /^[\r\n]*CONNECT /.test(request)
          if (status >= 500 && !(status === 501 && connectCase)) fiveHundreds.push(`${status} ← ${JSON.stringify(request)}`)
        }
      }
    }
    await Promise.all(Array.from({length: CONCURRENCY}, worker))

    expect(fiveHundreds).toEqual([])
    // The corpus exercises both sides: forwarded requests and refusals.
    expect(statusCounts['200'] ?? 0).toBeGreaterThan(CASES / 20)
    expect(statusCounts['400'] ?? 0).toBeGreaterThan(CASES / 20)
    expect(statusCounts['403'] ?? 0).toBeGreaterThan(0)

    const guarded = received.filter((r) => reachesInternal(r.url.split('?')[0]!) || /^admin\.local\.?(:\d*)?$/i.test(r.host ?? ''))
    expect(guarded.map((r) => `${r.kind} ${r.host} ${r.url} ← ${JSON.stringify(r.sentAs)}`)).toEqual([])
    const unnormalised = received.map((r) => ({r, problem: normalisedOriginFormProblem(r.url)})).filter((x) => x.problem !== undefined)
    expect(unnormalised.map(({r, problem}) => `${problem}: ${r.url}`)).toEqual([])
    const badHosts = received.filter((r) => r.host !== undefined && !/^([a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/.test(r.host))
    expect(badHosts.map((r) => r.host)).toEqual([])
    expect(received.length).toBeGreaterThan(CASES / 20)

    const stats = (await (await fetch(`${proxy.adminUrl}/api/services/s/stats?since=0`)).json()) as {versions: Record<string, {errors: number}>}
    expect(Object.values(stats.versions).map((v) => v.errors)).toEqual([0, 0])
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
    expect(metrics.split('\n').filter((l) => /^canary_proxy_requests_total\{[^}]*version="v\d"[^}]*code="5/.test(l))).toEqual([])
    // Still serving.
    expect((await get(`${proxy.url}/after`, {host: 'shop.local'})).status).toBe(200)
    process.stdout.write(`fuzz seed ${SEED}: ${CASES} cases, answers ${JSON.stringify(statusCounts)}, ${received.length} reached the upstream\n`)
  })

  it('has an oracle that would catch a bypass: the lenient reading sees /internal behind every trick', () => {
    for (const path of ['/x/../internal', '/x/%2e%2e/internal/s', '/x%2F..%2Finternal', '/x/..;/internal', '/x/..\\internal', '//internal', '/x/%C0%AE%C0%AE/internal', '/%69nternal', '/internal;a=b/x', '/x/%252e%252e/internal']) {
      expect([path, reachesInternal(path)]).toEqual([path, true])
    }
    for (const url of ['//a', '/a/./b', '/a/../b', '/a%2fb', '/%7e', '/a%2F', '/a;b', '/a\\b', '/%e2%82%ac', '/a b']) {
      expect([url, normalisedOriginFormProblem(url)]).toEqual([url, expect.any(String)])
    }
    expect(normalisedOriginFormProblem('/a/%E2%82%AC/b?x=/../%2f')).toBeUndefined()
  })
})
