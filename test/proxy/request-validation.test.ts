/**
 * The real proxy on loopback, requests sent as raw bytes (node:net), a real upstream recording
 * what it receives: the allow-list cannot be walked around, malformed requests never reach a
 * version or its counts, client aborts are not a version's failure, and the sticky/override
 * precedence is the documented one.
 */
import {connect} from 'node:net'

import {errors} from 'undici'
import {afterEach, describe, expect, it} from 'vitest'

import {isRequestFormError, isServerFailure} from '../../src/proxy/status-for-error.js'

import {config, eventually, get, sendRaw, start, startUpstream, type Upstream, type UpstreamHandler} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

async function upstream(name: string, handler?: UpstreamHandler): Promise<Upstream> {
  const u = await startUpstream(name, handler)
  cleanups.push(() => u.close())
  return u
}

async function proxyFor(yaml: string) {
  const proxy = await start(config(yaml))
  cleanups.push(() => proxy.close())
  return proxy
}

async function stats(proxy: {adminUrl: string}, service: string): Promise<Record<string, {requests: number; errors: number; clientAborts: number; codes: Record<string, number>}>> {
  const response = await fetch(`${proxy.adminUrl}/api/services/${service}/stats?since=0`)
  return ((await response.json()) as {versions: Record<string, {requests: number; errors: number; clientAborts: number; codes: Record<string, number>}>}).versions
}

describe('allow-list bypass (issue #12 item 1)', () => {
  async function guarded() {
    const app = await upstream('app')
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: internal, pathPrefix: /internal, allow: [10.0.0.0/8], service: s }
  - { name: admin, host: admin.local, allow: [10.0.0.0/8], service: s }
  - { name: panel, path: /ops/panel, allow: [10.0.0.0/8], service: s }
  - { name: delete, path: "/users/{id:[0-9]+}/delete", allow: [10.0.0.0/8], service: s }
  - { name: beta, header: { name: Host, value: beta.local }, allow: [10.0.0.0/8], service: s }
  - { name: all, service: s }
services:
  s:
    versions: [{ name: v1, servers: [${app.url}] }]
`)
    return {app, proxy}
  }

  const bypasses: [string, string][] = [
    ['absolute form', 'GET http://a/internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['absolute form without a Host on HTTP/1.0', 'GET http://a/internal/secret HTTP/1.0\r\n'],
    ['absolute form with a different Host', 'GET http://a/internal/secret HTTP/1.1\r\nHost: b\r\n'],
    ['dot segments', 'GET /x/../internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['encoded dot segments', 'GET /x/%2e%2e/internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['mixed-case encoded dots', 'GET /x/.%2E/internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['double slash', 'GET //internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['many slashes and dots', 'GET /.//./internal//secret HTTP/1.1\r\nHost: a\r\n'],
    ['encoded unreserved letters', 'GET /intern%61l/secret HTTP/1.1\r\nHost: a\r\n'],
    ['fully encoded segment', 'GET /%69%6e%74%65%72%6e%61%6c HTTP/1.1\r\nHost: a\r\n'],
    ['the bare prefix', 'GET /internal HTTP/1.1\r\nHost: a\r\n'],
    ['above the root', 'GET /../internal HTTP/1.1\r\nHost: a\r\n'],
    ['Tomcat path parameter', 'GET /x/..;/internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['path parameter on the prefix', 'GET /internal;x/secret HTTP/1.1\r\nHost: a\r\n'],
    ['encoded slash', 'GET /internal%2Fsecret HTTP/1.1\r\nHost: a\r\n'],
    ['encoded slash traversal', 'GET /x%2F..%2Finternal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['backslash', 'GET /x/..\\internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['encoded backslash', 'GET /x/..%5Cinternal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['double encoding', 'GET /x/%252e%252e/internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['double encoding formed by normalisation', 'GET /x/%25%32%65%25%32%65/internal/secret HTTP/1.1\r\nHost: a\r\n'],
        ['overlong UTF-8 dots', 'GET /x/%C0%AE%C0%AE/internal/secret HTTP/1.1\r\nHost: a\r\n'],
    ['NUL', 'GET /internal%00/secret HTTP/1.1\r\nHost: a\r\n'],
    ['fragment', 'GET /x/..#/../internal HTTP/1.1\r\nHost: a\r\n'],
    ['host with a trailing dot', 'GET / HTTP/1.1\r\nHost: admin.local.\r\n'],
    ['host in upper case with a port', 'GET / HTTP/1.1\r\nHost: ADMIN.Local:80\r\n'],
    ['absolute form naming the guarded host', 'GET http://admin.local/ HTTP/1.1\r\nHost: admin.local\r\n'],
    ['a second Host header', 'GET / HTTP/1.1\r\nHost: other\r\nHost: admin.local\r\n'],
    ['exact route with a dot segment', 'GET /ops/./panel HTTP/1.1\r\nHost: a\r\n'],
    ['exact route with a double slash', 'GET /ops//panel HTTP/1.1\r\nHost: a\r\n'],
    ['exact route with an encoded letter', 'GET /ops/p%61nel HTTP/1.1\r\nHost: a\r\n'],
    ['exact route with dot segments that end on it', 'GET /ops/panel/x/../../panel HTTP/1.1\r\nHost: a\r\n'],
    ['pattern route through dot segments', 'GET /users/12/x/../delete HTTP/1.1\r\nHost: a\r\n'],
    ['pattern route with an encoded digit', 'GET /users/%31%32/delete HTTP/1.1\r\nHost: a\r\n'],
    ['pattern route with a path parameter', 'GET /users/12;x/delete HTTP/1.1\r\nHost: a\r\n'],
    ['header route on Host in another case', 'GET / HTTP/1.1\r\nHost: BETA.local\r\n'],
    ['header route on Host with a trailing dot', 'GET / HTTP/1.1\r\nHost: beta.local.\r\n'],
    ['header route on Host through the absolute form', 'GET http://beta.local/ HTTP/1.1\r\nHost: beta.local\r\n'],
        ['X-Forwarded-For from an allowed network (not trusted: trustedProxyHops is 0)', 'GET /internal/secret HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3\r\nX-Real-Ip: 10.1.2.3\r\n'],
  ]
  it(`refuses all ${bypasses.length} bypass attempts (403 or 400) and the upstream never sees a guarded path or host`, async () => {
    const {app, proxy} = await guarded()
    const answers: Record<string, number> = {}
    for (const [name, head] of bypasses) answers[name] = (await sendRaw(proxy.address.port, `${head}Connection: close\r\n\r\n`)).status
    for (const [name] of bypasses) expect([name, answers[name]]).toEqual([name, expect.toBeOneOf([400, 403])])
    expect(app.requests.map((r) => `${r.headers.host} ${r.url}`)).toEqual([])
  })

  it('forwards the normalised path and host it routed on', async () => {
    const {app, proxy} = await guarded()
    const cases: [string, string, string][] = [
      ['GET /x/./y/../z?q=/../%2F HTTP/1.1\r\nHost: Shop.Local.:8080\r\n', '/x/z?q=/../%2F', 'shop.local:8080'],
      ['GET http://shop.local/a//b/%7euser HTTP/1.1\r\nHost: shop.local:80\r\n', '/a/b/~user', 'shop.local'],
      ['GET /intern HTTP/1.1\r\nHost: a\r\n', '/intern', 'a'],
      ['GET /internals HTTP/1.1\r\nHost: a\r\n', '/internals', 'a'],
      ['GET /%c3%a9t%c3%a9 HTTP/1.1\r\nHost: a\r\n', '/%C3%A9t%C3%A9', 'a'],
      ['GET /a"b<c> HTTP/1.1\r\nHost: a\r\n', '/a%22b%3Cc%3E', 'a'],
    ]
    for (const [head] of cases) expect((await sendRaw(proxy.address.port, `${head}Connection: close\r\n\r\n`)).status).toBe(200)
    expect(app.requests.map((r) => [r.url, r.headers.host])).toEqual(cases.map(([, url, host]) => [url, host]))
  })

  it('strips a prefix from the normalised path', async () => {
    const app = await upstream('app')
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: api, pathPrefix: /api, stripPrefix: true, service: s }
services:
  s:
    versions: [{ name: v1, servers: [${app.url}/base] }]
`)
    expect((await sendRaw(proxy.address.port, 'GET /x/../api/%761/./users?id=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status).toBe(200)
    expect((await sendRaw(proxy.address.port, 'GET //api HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status).toBe(200)
    expect(app.requests.map((r) => r.url)).toEqual(['/base/v1/users?id=1', '/base/'])
  })

  it('refuses a config whose route path is not in normalised form, naming the field', () => {
    const yaml = (path: string) => `listen: 127.0.0.1:0
routes:
  - { name: r, pathPrefix: "${path}", service: s }
services:
  s:
    versions: [{ name: v1, servers: [http://127.0.0.1:1] }]
`
    for (const [path, message] of [
      ['/a/../b', 'not in normalised form'],
      ['//a', 'not in normalised form'],
      ['/%7euser', 'not in normalised form'],
      ['/a%2fb', 'can never match'],
      ['/a;b', 'can never match'],
    ] as const) {
      expect(() => config(yaml(path))).toThrow(expect.objectContaining({problems: [expect.objectContaining({path: 'routes.0.pathPrefix', message: expect.stringContaining(message)})]}))
    }
    expect(() => config(yaml('/a/%C3%A9/b'))).not.toThrow()
  })
})

describe('client errors are never a version failure (issue #12 items 3 and 6)', () => {
  async function canaryService() {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: r, service: s }
services:
  s:
    versions:
      - { name: v1, weight: 50, servers: [${v1.url}] }
      - { name: v2, weight: 50, servers: [${v2.url}] }
    canary: v2
    header: { name: X-Canary }
`)
    return {v1, v2, proxy}
  }

  const malformed: [string, string, number][] = [
    ['malformed Host', 'GET / HTTP/1.1\r\nHost: [x\r\n', 400],
    ['Host with a bad IPv6 literal', 'GET / HTTP/1.1\r\nHost: [zz::1]:80\r\n', 400],
    ['Host with a port out of range', 'GET / HTTP/1.1\r\nHost: a:99999\r\n', 400],
    ['Host with user information', 'GET / HTTP/1.1\r\nHost: u@a\r\n', 400],
    ['Host with a percent-escape', 'GET / HTTP/1.1\r\nHost: a%2eb\r\n', 400],
    ['empty Host', 'GET / HTTP/1.1\r\nHost:\r\n', 400],
    ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n', 400],
    ['duplicate Host, different case', 'GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n', 400],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n', 400],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n', 501],
    ['absolute form with another scheme', 'GET ftp://a/x HTTP/1.1\r\nHost: a\r\n', 400],
    ['absolute form with a mismatched Host', 'GET http://a/x HTTP/1.1\r\nHost: b\r\n', 400],
    ['absolute form with user information', 'GET http://u:p@a/x HTTP/1.1\r\nHost: a\r\n', 400],
    ['fragment', 'GET /a#b HTTP/1.1\r\nHost: a\r\n', 400],
    ['malformed escape', 'GET /a%zz HTTP/1.1\r\nHost: a\r\n', 400],
    ['Transfer-Encoding gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n', 400],
    ['WebSocket upgrade with a malformed Host', 'GET /ws HTTP/1.1\r\nHost: [x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n', 400],
    ['WebSocket upgrade with a dot-segment escape', 'GET /ws/%2e%2e%2F HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n', 400],
  ]
  it(`answers ${malformed.length} malformed requests that ask for the canary with 400/501, counts them as client errors, and the canary's counts stay clean`, async () => {
    const {v1, v2, proxy} = await canaryService()
    for (const [name, head, status] of malformed) {
      const response = await sendRaw(proxy.address.port, `${head}X-Canary: always\r\nConnection: close\r\n\r\n`)
      expect([name, response.status]).toEqual([name, status])
      expect(response.body).toMatch(status === 501 ? /^not implemented: / : /^bad request: /)
    }
    expect(v1.requests).toHaveLength(0)
    expect(v2.requests).toHaveLength(0)
    const versions = await stats(proxy, 's')
    expect(versions.v2).toMatchObject({requests: 0, errors: 0})
    expect(versions.v1).toMatchObject({requests: 0, errors: 0})
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
    expect(metrics.split("\n").filter((l) => l.startsWith("canary_proxy_client_errors_total"))).toEqual([`canary_proxy_client_errors_total{reason="bad_request"} ${malformed.length - 1}`, `canary_proxy_client_errors_total{reason="not_implemented"} 1`])
    expect(metrics).toContain('canary_proxy_client_errors_total{reason="not_implemented"} 1')
    expect(metrics).not.toMatch(/canary_proxy_requests_total\{[^}]*version="v2"[^}]*code="5/)
    // The canary is still served.
    expect((await get(`${proxy.url}/`, {'x-canary': 'always'})).text).toBe('v2')
  })

  it('does not charge a client that aborts mid-body or mid-response to the version, nor take its server out', async () => {
    let releaseSlow: () => void = () => undefined
    const slowAnswered = new Promise<void>((resolve) => (releaseSlow = resolve))
    const v1 = await upstream('v1')
    const v2 = await upstream('v2', (req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, {'content-length': '10'})
        res.write('12345')
        releaseSlow()
        return
      }
      res.end('v2')
    })
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: r, service: s }
services:
  s:
    versions:
      - { name: v1, weight: 50, servers: [${v1.url}] }
      - { name: v2, weight: 50, servers: [${v2.url}] }
    canary: v2
    header: { name: X-Canary }
`)
    // Mid-body, three times (three resets in a row would bench a server if they were counted).
    for (let i = 0; i < 3; i++) {
      const socket = connect(proxy.address.port, '127.0.0.1')
      await new Promise<void>((resolve) => socket.on('connect', resolve))
      socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nX-Canary: always\r\nContent-Length: 100000\r\n\r\npartial body')
      // Wait until the proxy has opened the upstream request, then reset the client connection.
      await eventually(() => new Promise<boolean>((resolve) => v2.server.getConnections((_e, n) => resolve(n > 0))))
      socket.resetAndDestroy()
      await eventually(async () => (await stats(proxy, 's')).v2?.clientAborts === i + 1)
    }
    // Mid-response.
    const socket = connect(proxy.address.port, '127.0.0.1')
    socket.write('GET /slow HTTP/1.1\r\nHost: a\r\nX-Canary: always\r\n\r\n')
    const gotHead = new Promise<void>((resolve) => socket.once('data', () => resolve()))
    await slowAnswered
    await gotHead
    socket.destroy()
    await eventually(async () => (await stats(proxy, 's')).v2?.clientAborts === 4)

    const versions = await stats(proxy, 's')
    expect(versions.v2).toMatchObject({requests: 0, errors: 0, clientAborts: 4})
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
    expect(metrics).toContain('canary_proxy_requests_total{route="r",service="s",version="",code="499"} 4')
    expect(metrics).not.toMatch(/version="v2"/.source + /[^\n]*code="(4|5)/.source)
    // The canary's server was not marked down: it still serves.
    const state = (await (await fetch(`${proxy.adminUrl}/api/state`)).json()) as {services: {s: {versions: {name: string; healthy: boolean}[]}}}
    expect(state.services.s.versions.find((v) => v.name === 'v2')?.healthy).toBe(true)
    expect((await get(`${proxy.url}/`, {'x-canary': 'always'})).text).toBe('v2')
  })

  it('still charges a real upstream failure to the version', async () => {
    const v1 = await upstream('v1')
    const v2 = await upstream('v2', (_req, res) => res.socket?.destroy())
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: r, service: s }
services:
  s:
    versions:
      - { name: v1, weight: 50, servers: [${v1.url}] }
      - { name: v2, weight: 50, servers: [${v2.url}] }
    canary: v2
    header: { name: X-Canary }
`)
    const response = await sendRaw(proxy.address.port, 'POST / HTTP/1.1\r\nHost: a\r\nX-Canary: always\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')
    expect(response.status).toBe(502)
    expect((await stats(proxy, 's')).v2).toMatchObject({requests: 1, errors: 1, clientAborts: 0})
  })
})

describe('isRequestFormError', () => {
  it('tells errors forming the upstream request (from the client input) from upstream failures', () => {
    expect(isRequestFormError(new errors.InvalidArgumentError('invalid header'))).toBe(true)
    expect(isRequestFormError(new errors.RequestContentLengthMismatchError())).toBe(true)
    expect(isRequestFormError(Object.assign(new TypeError('bad'), {code: 'ERR_INVALID_ARG_VALUE'}))).toBe(true)
    for (const upstream of [new errors.SocketError('other side closed'), new errors.HeadersTimeoutError(), Object.assign(new Error('refused'), {code: 'ECONNREFUSED'})]) {
      expect([upstream.message, isRequestFormError(upstream)]).toEqual([upstream.message, false])
    }
    expect(isServerFailure(new errors.InvalidArgumentError('x'))).toBe(false)
  })

  it('refuses an unknown sticky precedence with a located problem', () => {
    expect(() =>
      config(`listen: 127.0.0.1:0
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [http://127.0.0.1:1] }]
    sticky: { cookie: sv, precedence: last }
`),
    ).toThrow(expect.objectContaining({problems: [expect.objectContaining({path: 'services.s.sticky.precedence', location: expect.objectContaining({line: 6})})]}))
  })
})

describe('sticky cookie and override precedence through the real proxy (issue #12 item 13)', () => {
  async function stickyProxy(precedence: string | undefined) {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const proxy = await proxyFor(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: r, service: s }
services:
  s:
    versions:
      - { name: v1, weight: 100, servers: [${v1.url}] }
      - { name: v2, weight: 0, servers: [${v2.url}] }
    canary: v2
    header: { name: X-Canary }
    cookie: { name: canary }
    sticky: { cookie: sv${precedence === undefined ? '' : `, precedence: ${precedence}`} }
`)
    // Weight 100/0: the first request is pinned to v1; its cookie is the stable sticky cookie.
    const first = await get(`${proxy.url}/`)
    expect(first.text).toBe('v1')
    const stable = first.headers['set-cookie']![0]!.split(';')[0]!
    // Header always moves a fresh client to v2 and pins it there.
    const toCanary = await get(`${proxy.url}/`, {'x-canary': 'always'})
    expect(toCanary.text).toBe('v2')
    const canary = toCanary.headers['set-cookie']![0]!.split(';')[0]!
    return {proxy, stable, canary}
  }

  it('by default (ingress-nginx) a sticky client stays on its version whatever the header and cookie say', async () => {
    const {proxy, stable, canary} = await stickyProxy(undefined)
    expect((await get(`${proxy.url}/`, {cookie: stable, 'x-canary': 'always'})).text).toBe('v1')
    expect((await get(`${proxy.url}/`, {cookie: `${stable}; canary=always`})).text).toBe('v1')
    expect((await get(`${proxy.url}/`, {cookie: canary, 'x-canary': 'never'})).text).toBe('v2')
    expect((await get(`${proxy.url}/`, {cookie: `${canary}; canary=never`})).text).toBe('v2')
    // Weight 0 does not move a canary-sticky client (ingress-nginx's affinity-canary-behavior: sticky).
    expect((await get(`${proxy.url}/`, {cookie: canary})).text).toBe('v2')
  })

  it('with precedence afterOverrides (Traefik) the header and cookie beat the sticky cookie', async () => {
    const {proxy, stable, canary} = await stickyProxy('afterOverrides')
    expect((await get(`${proxy.url}/`, {cookie: stable, 'x-canary': 'always'})).text).toBe('v2')
    expect((await get(`${proxy.url}/`, {cookie: `${stable}; canary=always`})).text).toBe('v2')
    expect((await get(`${proxy.url}/`, {cookie: canary, 'x-canary': 'never'})).text).toBe('v1')
    expect((await get(`${proxy.url}/`, {cookie: canary})).text).toBe('v2')
  })

  it('treats override values as exact, case-sensitive and unquoted, and reads the first cookie of a name', async () => {
    const {proxy} = await stickyProxy(undefined)
    for (const [headers, expected] of [
      [{'x-canary': 'Always'}, 'v1'],
      [{'x-canary': 'always '}, 'v2'],
      [{cookie: 'canary="always"'}, 'v1'],
      [{cookie: 'Canary=always'}, 'v1'],
      [{cookie: 'canary=x; canary=always'}, 'v1'],
      [{cookie: 'a=1; canary=always'}, 'v2'],
    ] as const) {
      expect([headers, (await get(`${proxy.url}/`, headers)).text]).toEqual([headers, expected])
    }
  })
})
