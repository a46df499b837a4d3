// TLS at the edge of the bundled proxy, with real clients: curl (--http2 / --http1.1, --cacert,
// --resolve), Node's http2 and tls clients, and certificates made by openssl in the test.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {request as httpRequest} from 'node:http'
import {connect as connectHttp2, type ClientHttp2Session} from 'node:http2'
import {createServer as createHttpsServer, type Server as HttpsServer} from 'node:https'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {connect as connectTls, type PeerCertificate, type TLSSocket} from 'node:tls'

import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {loadProxyConfig, parseProxyConfig} from '../../src/proxy/config.js'
import {httpsLocation} from '../../src/proxy/tls-listener.js'
import {CertificateStore, loadCertificate, nameMatches} from '../../src/proxy/tls.js'
import {eventually, start, startUpstream, type Upstream} from './helpers.js'
import {makePki, type Leaf, type Pki} from './pki.js'

let pki: Pki
let a: Leaf
let b: Leaf
const cleanups: (() => Promise<void> | void)[] = []

beforeAll(() => {
  pki = makePki()
  // Two SNI names: an exact one and a wildcard, each in its own certificate.
  a = pki.leaf('a', ['a.test'])
  b = pki.leaf('b', ['*.b.test', 'b.test'])
})
afterAll(() => pki.remove())
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

async function upstream(name: string): Promise<Upstream> {
  const u = await startUpstream(name)
  cleanups.push(() => u.close())
  return u
}

/** Writes a proxy config into the PKI directory (certificate paths relative to it) and loads it. */
async function writeConfig(name: string, body: string): Promise<string> {
  const file = join(pki.dir, `${name}.yaml`)
  writeFileSync(file, body)
  return file
}

function tlsConfig(v1: Upstream, v2: Upstream, extra = '', certificates = '[{ certFile: a.pem, keyFile: a.key }, { certFile: b.pem, keyFile: b.key }]'): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
tls:
  certificates: ${certificates}
${extra}routes: [{ name: r, service: app }]
services:
  app:
    versions:
      - { name: v1, weight: 100, servers: [${v1.url}] }
      - { name: v2, weight: 0, servers: [${v2.url}] }
    canary: v2
    header: { name: X-Canary, value: always }
`
}

async function startTls(v1: Upstream, v2: Upstream, extra = '', options: Parameters<typeof start>[1] = {}) {
  const file = await writeConfig(`proxy-${Math.random().toString(36).slice(2)}`, tlsConfig(v1, v2, extra))
  const proxy = await start(await loadProxyConfig(file), options)
  cleanups.push(() => proxy.close())
  return {proxy, file, port: proxy.address.port}
}

/** Runs curl (asynchronously: the proxy runs in this process) and returns its exit code and output. */
function curl(args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '10', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.once('error', (error) => reject(new Error(`curl could not run (apt-get install -y curl): ${error.message}`)))
    child.once('exit', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

/** The certificate a TLS handshake to 127.0.0.1:port presents for `servername` (none: no SNI). */
async function servedCertificate(port: number, servername?: string): Promise<PeerCertificate> {
  const socket = connectTls({host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(servername === undefined ? {} : {servername})})
  await once(socket, 'secureConnect')
  const certificate = socket.getPeerCertificate()
  socket.destroy()
  return certificate
}

function fingerprint(leaf: Leaf): string {
  return loadCertificate(leaf).fingerprint256
}

/** One request on an HTTP/2 session; resolves with status, headers and body. */
function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<{status: number; headers: Record<string, unknown>; text: string}> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, {endStream: body === undefined})
    let response: Record<string, unknown> = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => (response = h))
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({status: Number(response[':status']), headers: response, text: Buffer.concat(chunks).toString('utf8')}))
    stream.on('error', reject)
    if (body !== undefined) stream.end(body)
  })
}

function h2Session(port: number, servername = 'a.test'): Promise<ClientHttp2Session> {
  const session = connectHttp2(`https://127.0.0.1:${port}`, {ca: pki.ca, servername})
  cleanups.push(() => void session.destroy())
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}

describe('tls config', () => {
  const base = (tls: string, extra = '') => `listen: 127.0.0.1:0\n${tls}routes: [{ name: r, service: s }]\nservices:\n  s:\n    versions: [{ name: v1, servers: [http://127.0.0.1:9] }]\n${extra}`

  function problems(yaml: string): {path: string; message: string; line?: number}[] {
    try {
      parseProxyConfig(yaml, join(pki.dir, 'check.yaml'))
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      return (error as ConfigError).problems.map((p) => ({path: p.path, message: p.message, ...(p.location?.line === undefined ? {} : {line: p.location.line})}))
    }
    throw new Error('expected a ConfigError')
  }

  it('accepts the TLS example in docs/proxy.md, with certificates for its names', () => {
    const docs = readFileSync(new URL('../../docs/proxy.md', import.meta.url), 'utf8')
    const section = docs.slice(docs.indexOf('## TLS and HTTP/2'))
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
    expect(example).toContain('tls:')
    const dir = join(pki.dir, 'docs-example')
    mkdirSync(join(dir, 'tls'), {recursive: true})
    for (const [id, name] of [['shop', 'shop.example.com'], ['wild', '*.api.example.com']] as const) {
      const leaf = pki.leaf(`docs-${id}`, [name])
      writeFileSync(join(dir, `tls/${id}.pem`), leaf.cert)
      writeFileSync(join(dir, `tls/${id}.key`), leaf.key)
    }
    const yaml = `${example!}routes: [{ name: r, service: s }]\nservices:\n  s:\n    versions: [{ name: v1, servers: [http://127.0.0.1:9] }]\n`
    const config = parseProxyConfig(yaml, join(dir, 'proxy.yaml'))
    expect(config.tls).toMatchObject({certificates: [{certFile: join(dir, 'tls/shop.pem')}, {certFile: join(dir, 'tls/wild.pem')}], minVersion: 'TLSv1.2', http2: true, redirect: {listen: '0.0.0.0:8080', httpsPort: 443}})
  })

  it('resolves certificate paths against the config file and accepts a valid pair', () => {
    const config = parseProxyConfig(base('tls:\n  certificates: [{ certFile: a.pem, keyFile: a.key }]\n'), join(pki.dir, 'check.yaml'))
    expect(config.tls).toMatchObject({certificates: [{certFile: a.certFile, keyFile: a.keyFile}], minVersion: 'TLSv1.2', http2: true})
  })

  it('locates a missing file, a key of another certificate, a non-PEM file and a shared redirect address', () => {
    writeFileSync(join(pki.dir, 'garbage.pem'), 'not a certificate\n')
    const found = problems(
      base(`tls:
  certificates:
    - { certFile: missing.pem, keyFile: a.key }
    - { certFile: a.pem, keyFile: b.key }
    - { certFile: garbage.pem, keyFile: a.key }
    - { certFile: a.pem, keyFile: missing.key }
  redirect: { listen: 127.0.0.1:8443 }
`).replace('127.0.0.1:0', '127.0.0.1:8443'),
    )
    expect(found).toEqual([
      {path: 'tls.certificates.0.certFile', message: expect.stringMatching(/missing\.pem: cannot be read: no such file/), line: 4},
      {path: 'tls.certificates.1.keyFile', message: expect.stringMatching(/b\.key: this key does not belong to the certificate in .*a\.pem/), line: 5},
      {path: 'tls.certificates.2.certFile', message: expect.stringMatching(/garbage\.pem: not a PEM certificate/), line: 6},
      {path: 'tls.certificates.3.keyFile', message: expect.stringMatching(/missing\.key: cannot be read: no such file/), line: 7},
      {path: 'tls.redirect.listen', message: expect.stringContaining("cannot share the TLS listener's address"), line: 8},
    ])
  })

  it('refuses no certificates, an unknown field, an unknown TLS version and an upstream CA that is not a certificate', () => {
    expect(problems(base('tls: { certificates: [] }\n')).map((p) => p.path)).toEqual(['tls.certificates'])
    expect(problems(base('tls: { certificates: [{ certFile: a.pem, keyFile: a.key }], minVersoin: TLSv1.3 }\n'))).toMatchObject([{path: 'tls.minVersoin', message: 'unknown field'}])
    expect(problems(base('tls: { certificates: [{ certFile: a.pem, keyFile: a.key }], minVersion: TLSv1.1 }\n')).map((p) => p.path)).toEqual(['tls.minVersion'])
    const upstreamTls = (tls: string) => `listen: 127.0.0.1:0\nroutes: [{ name: r, service: s }]\nservices:\n  s:\n    upstreamTls: ${tls}\n    versions: [{ name: v1, servers: [https://127.0.0.1:9] }]\n`
    expect(problems(upstreamTls('{ caFile: a.key }'))).toMatchObject([{path: 'services.s.upstreamTls.caFile', message: expect.stringContaining('contains no PEM certificate'), line: 5}])
    expect(problems(upstreamTls('{ caFile: nothing.pem }'))).toMatchObject([{path: 'services.s.upstreamTls.caFile', message: expect.stringContaining('no such file')}])
    expect(problems(base('', '    upstreamTls: { caFile: ca.pem }\n'))).toMatchObject([{path: 'services.s.upstreamTls', message: expect.stringContaining('no server of this service is an https:// URL')}])
  })
})

describe('SNI choice', () => {
  it('matches exact names, then one-label wildcards, then the first certificate', () => {
    expect(nameMatches('*.b.test', 'x.b.test')).toBe(true)
    expect(nameMatches('*.b.test', 'b.test')).toBe(false)
    expect(nameMatches('*.b.test', 'y.x.b.test')).toBe(false)
    expect(nameMatches('*.b.test', 'xb.test')).toBe(false)
    const store = new CertificateStore([loadCertificate(a), loadCertificate(b)], 'TLSv1.2')
    const fa = fingerprint(a)
    const fb = fingerprint(b)
    expect(store.certificateFor('a.test').fingerprint256).toBe(fa)
    expect(store.certificateFor('A.TEST.').fingerprint256).toBe(fa)
    expect(store.certificateFor('x.b.test').fingerprint256).toBe(fb)
    expect(store.certificateFor('b.test').fingerprint256).toBe(fb)
    expect(store.certificateFor('y.x.b.test').fingerprint256).toBe(fa)
    expect(store.certificateFor('other.test').fingerprint256).toBe(fa)
    expect(store.certificateFor(undefined).fingerprint256).toBe(fa)
    // The contexts handed to the TLS stack follow the same choice.
    expect(store.contextFor('X.B.TEST')).toBe(store.contextFor('b.test'))
    expect(store.contextFor('y.x.b.test')).toBe(store.defaultContext)
  })
})

describe('TLS listener', () => {
  it('serves HTTP/2 and HTTP/1.1 to curl with the certificate SNI asks for, and forwards to HTTP/1.1 upstreams with Host and X-Forwarded-Proto', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const {proxy, port} = await startTls(v1, v2)
    expect(proxy.url).toBe(`https://127.0.0.1:${port}`)
    const common = ['--cacert', pki.caFile, '--resolve', `a.test:${port}:127.0.0.1`, '--resolve', `x.b.test:${port}:127.0.0.1`, '-w', ' %{http_version} %{http_code}']
    expect(await curl([...common, '--http2', `https://a.test:${port}/h2?q=1`])).toMatchObject({code: 0, stdout: 'v1 2 200'})
    expect(await curl([...common, '--http1.1', `https://a.test:${port}/h1`])).toMatchObject({code: 0, stdout: 'v1 1.1 200'})
    // The wildcard certificate verifies for x.b.test: SNI picked it.
    expect(await curl([...common, '--http2', `https://x.b.test:${port}/wild`])).toMatchObject({code: 0, stdout: 'v1 2 200'})
    // Version choice is the same over HTTP/2: the override header picks the canary.
    expect(await curl([...common, '--http2', '-H', 'X-Canary: always', `https://a.test:${port}/canary`])).toMatchObject({code: 0, stdout: 'v2 2 200'})

    const [h2, h1, wild] = v1.requests
    expect(h2).toMatchObject({method: 'GET', url: '/h2?q=1', headers: {host: `a.test:${port}`, 'x-forwarded-proto': 'https', 'x-forwarded-host': `a.test:${port}`}})
    expect(Object.keys(h2!.headers).filter((k) => k.startsWith(':') || ['connection', 'keep-alive', 'upgrade', 'te'].includes(k) && h2!.headers[k] !== 'keep-alive')).toEqual([])
    expect(h1).toMatchObject({url: '/h1', headers: {host: `a.test:${port}`, 'x-forwarded-proto': 'https'}})
    expect(wild).toMatchObject({headers: {host: `x.b.test:${port}`}})
    expect(v2.requests).toMatchObject([{url: '/canary', headers: {host: `a.test:${port}`}}])

    expect((await servedCertificate(port, 'a.test')).fingerprint256).toBe(fingerprint(a))
    expect((await servedCertificate(port, 'deep.b.test')).fingerprint256).toBe(fingerprint(b))
    // Unknown names and clients without SNI get the first certificate.
    expect((await servedCertificate(port, 'unknown.test')).fingerprint256).toBe(fingerprint(a))
    expect((await servedCertificate(port)).fingerprint256).toBe(fingerprint(a))
    expect(proxy.state().tls?.certificates.map((c) => c.names)).toEqual([['a.test'], ['*.b.test', 'b.test']])
  })

  it('speaks only HTTP/1.1 with `http2: false`, and refuses TLS 1.2 clients with `minVersion: TLSv1.3`', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const {port} = await startTls(v1, v2, '  http2: false\n  minVersion: TLSv1.3\n')
    const common = ['--cacert', pki.caFile, '--resolve', `a.test:${port}:127.0.0.1`, '-w', ' %{http_version}']
    expect(await curl([...common, '--http2', `https://a.test:${port}/`])).toMatchObject({code: 0, stdout: 'v1 1.1'})
    const old = await curl([...common, '--tlsv1.2', '--tls-max', '1.2', `https://a.test:${port}/`])
    expect(old.code).not.toBe(0)
    expect(old.stderr).toMatch(/alert|version/i)
    expect(v1.requests).toHaveLength(1)
  })

  it('forwards HTTP/2 request bodies and response headers, counts stats and writes the access log as for HTTP/1.1', async () => {
    const echo = await startUpstream('echo', (req, res, body) => {
      // 4 MiB, chunked: more than HTTP/2's flow-control windows, so it passes only with backpressure working.
      if (req.url === '/big') return void res.end(Buffer.alloc(4 * 1024 * 1024, 0x62))
      res.setHeader('x-echo-length', String(body.length))
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.end(`${req.method} ${body}`)
    })
    cleanups.push(() => echo.close())
    const v2 = await upstream('v2')
    const log = join(pki.dir, `access-${Math.random().toString(36).slice(2)}.log`)
    const {proxy, port} = await startTls(echo, v2, `accessLog: { path: ${log} }\n`)
    const session = await h2Session(port)
    const body = 'x'.repeat(100_000)
    const posted = await h2Request(session, {':method': 'POST', ':path': '/upload', ':authority': `a.test:${port}`, 'content-type': 'text/plain'}, body)
    expect(posted).toMatchObject({status: 200, text: `POST ${body}`, headers: {'x-echo-length': '100000', 'set-cookie': ['a=1', 'b=2']}})
    const got = await h2Request(session, {':method': 'GET', ':path': '/get', ':authority': `a.test:${port}`})
    expect(got).toMatchObject({status: 200, text: 'GET '})
    const big = await h2Request(session, {':method': 'GET', ':path': '/big', ':authority': `a.test:${port}`})
    expect([big.status, big.text.length, /^b+$/.test(big.text)]).toEqual([200, 4 * 1024 * 1024, true])
    expect(echo.requests.map((r) => [r.method, r.url, r.headers.host, r.body.length])).toEqual([
      ['POST', '/upload', `a.test:${port}`, 100_000],
      ['GET', '/get', `a.test:${port}`, 0],
      ['GET', '/big', `a.test:${port}`, 0],
    ])
    const missing = await h2Request(session, {':method': 'GET', ':path': '/x', ':authority': `a.test:${port}`, 'x-canary': 'always'})
    expect(missing.status).toBe(200)

    const stats = (await (await fetch(`${proxy.adminUrl}/api/services/app/stats?since=0`)).json()) as {versions: Record<string, {requests: number}>}
    expect(stats.versions.v1?.requests).toBe(3)
    expect(stats.versions.v2?.requests).toBe(1)
    session.close()
    await proxy.close()
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.map((l) => [l.method, l.host, l.path, l.status, l.version])).toEqual([
      ['POST', `a.test:${port}`, '/upload', 200, 'v1'],
      ['GET', `a.test:${port}`, '/get', 200, 'v1'],
      ['GET', `a.test:${port}`, '/big', 200, 'v1'],
      ['GET', `a.test:${port}`, '/x', 200, 'v2'],
    ])
  })

  it("passes the upstream's response trailers on to HTTP/2 clients, without hop-by-hop fields", async () => {
    const trailing = await startUpstream('trailing', (_req, res) => {
      res.writeHead(200, {trailer: 'grpc-status, grpc-message, connection'})
      res.write('part')
      res.addTrailers({'grpc-status': '0', 'grpc-message': 'ok', connection: 'close'})
      res.end()
    })
    cleanups.push(() => trailing.close())
    const {port} = await startTls(trailing, await upstream('v2'))
    const session = await h2Session(port)
    const stream = session.request({':method': 'GET', ':path': '/t', ':authority': `a.test:${port}`})
    const [trailers] = (await once(stream, 'trailers')) as [Record<string, unknown>]
    stream.resume()
    expect(trailers).toMatchObject({'grpc-status': '0', 'grpc-message': 'ok'})
    expect(trailers).not.toHaveProperty('connection')
  })

  it('refuses an HTTP/2 request whose Host disagrees with :authority, and keeps the session serving', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const {port} = await startTls(v1, v2)
    const session = await h2Session(port)
    expect(await h2Request(session, {':method': 'GET', ':path': '/conflict', ':authority': `a.test:${port}`, host: 'internal.test'})).toMatchObject({status: 400, text: 'bad request: more than one Host header\n'})
    expect(await h2Request(session, {':method': 'GET', ':path': '/same', ':authority': `a.test:${port}`, host: `A.TEST:${port}`})).toMatchObject({status: 200, text: 'v1'})
    expect(v1.requests.map((r) => [r.url, r.headers.host])).toEqual([['/same', `a.test:${port}`]])
  })

  it('checks HTTP/2 request targets like HTTP/1.1 ones: no allow-list bypass through dot segments or encoded dots', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const file = await writeConfig('h2-allow', `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
tls:
  certificates: [{ certFile: a.pem, keyFile: a.key }]
routes:
  - { name: internal, pathPrefix: /internal, allow: [10.0.0.0/8], service: app }
  - { name: rest, pathPrefix: /, service: app }
services:
  app:
    versions: [{ name: v1, servers: [${v1.url}] }, { name: v2, weight: 0, servers: [${v2.url}] }]
`)
    const proxy = await start(await loadProxyConfig(file))
    cleanups.push(() => proxy.close())
    const session = await h2Session(proxy.address.port)
    for (const path of ['/internal/secret', '/x/../internal/secret', '/x/%2e%2e/internal/secret', '/x/%2E%2E/internal/secret', '/%69nternal/secret']) {
      expect([path, (await h2Request(session, {':method': 'GET', ':path': path, ':authority': 'a.test'})).status]).toEqual([path, 403])
    }
    expect((await h2Request(session, {':method': 'GET', ':path': '/public/../ok', ':authority': 'a.test'})).status).toBe(200)
    expect(v1.requests.map((r) => r.url)).toEqual(['/ok'])
  })

  it('aborts the upstream request when an HTTP/2 client resets its stream, and keeps the session serving', async () => {
    let hang: (() => void) | undefined
    const slow = await startUpstream('slow', (req, res) => {
      if (req.url === '/hang') {
        req.socket.once('close', () => hang?.())
        return
      }
      res.end('fast')
    })
    cleanups.push(() => slow.close())
    const {port} = await startTls(slow, await upstream('v2'))
    const session = await h2Session(port)
    const upstreamClosed = new Promise<void>((resolve) => (hang = resolve))
    const stream = session.request({':method': 'GET', ':path': '/hang', ':authority': `a.test:${port}`})
    stream.on('error', () => undefined)
    await eventually(() => slow.requests.length === 1)
    stream.close(0x8) // RST_STREAM CANCEL
    await upstreamClosed
    expect(await h2Request(session, {':method': 'GET', ':path': '/next', ':authority': `a.test:${port}`})).toMatchObject({status: 200, text: 'fast'})
  })

  it('applies the client limits on the TLS listener: 400 for a smuggling attempt, 431 for a huge head (HTTP/1.1 and HTTP/2), 408 for a slow head, and a stalled handshake is dropped', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const {port} = await startTls(v1, v2, 'timeouts: { clientHeadersMs: 300 }\nlimits: { maxHeaderBytes: 2048 }\n')
    const exchange = async (text: string): Promise<string> => {
      const socket = connectTls({host: '127.0.0.1', port, servername: 'a.test', ca: pki.ca, ALPNProtocols: ['http/1.1']})
      cleanups.push(() => void socket.destroy())
      await once(socket, 'secureConnect')
      socket.write(text)
      let answer = ''
      socket.on('data', (c: Buffer) => (answer += c.toString('latin1')))
      await once(socket, 'close')
      return answer
    }
    expect(await exchange('POST / HTTP/1.1\r\nhost: a.test\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /)
    expect(await exchange(`GET / HTTP/1.1\r\nhost: a.test\r\nx-big: ${'a'.repeat(4096)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /)
    expect(await exchange('GET / HTTP/1.1\r\nhost: a.test\r\n')).toMatch(/^HTTP\/1\.1 408 /)
    // A client that connects and never sends a ClientHello is cut off after clientHeadersMs.
    const silent = (await import('node:net')).connect({host: '127.0.0.1', port})
    cleanups.push(() => void silent.destroy())
    silent.on('error', () => undefined)
    await once(silent, 'close')
    // HTTP/2: a header list over maxHeaderBytes gets 431 too, also on a connection's first request
    // (before the client has acknowledged the limit in SETTINGS), and the session goes on serving.
    // The request is issued before the connection is up, so it leaves with the client preface.
    const session = connectHttp2(`https://127.0.0.1:${port}`, {ca: pki.ca, servername: 'a.test'})
    cleanups.push(() => void session.destroy())
    expect(await h2Request(session, {':method': 'GET', ':path': '/big', ':authority': 'a.test', 'x-big': 'a'.repeat(3000)})).toMatchObject({status: 431})
    expect(await h2Request(session, {':method': 'GET', ':path': '/small', ':authority': 'a.test'})).toMatchObject({status: 200})
    expect(v1.requests.map((r) => r.url)).toEqual(['/small'])
    v1.requests.length = 0
    expect(v1.requests).toEqual([])
  })

  it('drains on close: an in-flight HTTP/2 request finishes, then its session and an idle HTTP/1.1 connection are closed', async () => {
    let release: (() => void) | undefined
    const held = await startUpstream('held', (_req, res) => {
      release = () => res.end('finished')
    })
    cleanups.push(() => held.close())
    const [v2] = [await upstream('v2')]
    const file = await writeConfig('drain', tlsConfig(held, v2))
    const proxy = await start(await loadProxyConfig(file))
    const port = proxy.address.port
    const session = await h2Session(port)
    const idle = connectTls({host: '127.0.0.1', port, servername: 'a.test', ca: pki.ca, ALPNProtocols: ['http/1.1']})
    cleanups.push(() => void idle.destroy())
    await once(idle, 'secureConnect')
    const idleClosed = once(idle, 'close')
    const inFlight = h2Request(session, {':method': 'GET', ':path': '/slow', ':authority': `a.test:${port}`})
    await eventually(() => release !== undefined)
    const closed = proxy.close()
    await idleClosed
    release!()
    expect(await inFlight).toMatchObject({status: 200, text: 'finished'})
    await closed
    expect(session.closed || session.destroyed).toBe(true)
  })

  it('rotates a certificate on file change without dropping open HTTP/1.1 and HTTP/2 connections; a broken pair keeps the old one', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    // Its own files, so the rotation does not disturb the other tests.
    const first = pki.leaf('rot1', ['a.test'])
    const rotated = pki.leaf('rot2', ['a.test'])
    const certFile = join(pki.dir, 'live.pem')
    const keyFile = join(pki.dir, 'live.key')
    writeFileSync(certFile, first.cert)
    writeFileSync(keyFile, first.key)
    const file = await writeConfig('rotation', tlsConfig(v1, v2, '', '[{ certFile: live.pem, keyFile: live.key }]'))
    const reloaded: Record<string, unknown>[] = []
    let onEvent: (() => void) | undefined
    const proxy = await start(await loadProxyConfig(file), {
      watchConfig: true,
      log: (event) => {
        if (event.msg === 'config reloaded' || event.msg === 'config reload refused; the previous config keeps serving') {
          reloaded.push(event)
          onEvent?.()
        }
      },
    })
    cleanups.push(() => proxy.close())
    const port = proxy.address.port
    const nextReload = () => new Promise<void>((resolve) => (onEvent = resolve))

    // Open connections: an HTTP/2 session and an HTTP/1.1 keep-alive connection.
    const session = await h2Session(port)
    expect(await h2Request(session, {':method': 'GET', ':path': '/before', ':authority': `a.test:${port}`})).toMatchObject({status: 200})
    const h1 = connectTls({host: '127.0.0.1', port, servername: 'a.test', ca: pki.ca, ALPNProtocols: ['http/1.1']})
    cleanups.push(() => void h1.destroy())
    await once(h1, 'secureConnect')
    expect(h1.getPeerCertificate().fingerprint256).toBe(fingerprint(first))
    const h1Get = async (path: string) => {
      h1.write(`GET ${path} HTTP/1.1\r\nhost: a.test\r\n\r\n`)
      let text = ''
      while (!/\r\n\r\nv1$/.test(text)) text += ((await once(h1, 'data')) as [Buffer])[0].toString()
      return text
    }
    expect(await h1Get('/before')).toMatch(/^HTTP\/1\.1 200/)

    // Rotate: new certificate and key, each replaced atomically (as cert-manager or `mv` does).
    let reload = nextReload()
    writeFileSync(`${keyFile}.tmp`, rotated.key)
    writeFileSync(`${certFile}.tmp`, rotated.cert)
    renameSync(`${keyFile}.tmp`, keyFile)
    renameSync(`${certFile}.tmp`, certFile)
    await reload
    while (reloaded.at(-1)?.msg !== 'config reloaded') {
      reload = nextReload()
      await reload
    }
    expect((await servedCertificate(port, 'a.test')).fingerprint256).toBe(fingerprint(rotated))
    // The connections opened before the rotation still work, on their old certificate.
    expect(await h2Request(session, {':method': 'GET', ':path': '/after', ':authority': `a.test:${port}`})).toMatchObject({status: 200, text: 'v1'})
    expect(await h1Get('/after')).toMatch(/^HTTP\/1\.1 200/)
    expect(h1.getPeerCertificate().fingerprint256).toBe(fingerprint(first))
    expect(await curl(['--cacert', pki.caFile, '--resolve', `a.test:${port}:127.0.0.1`, '--http2', `https://a.test:${port}/new`])).toMatchObject({code: 0, stdout: 'v1'})

    // A broken rotation (a key of another certificate) is refused and reported; the current pair serves on.
    const failuresBefore = proxy.state().reloads.failure
    reload = nextReload()
    writeFileSync(`${keyFile}.tmp`, a.key)
    renameSync(`${keyFile}.tmp`, keyFile)
    await reload
    expect(reloaded.at(-1)).toMatchObject({msg: 'config reload refused; the previous config keeps serving', problems: [{path: 'tls.certificates.0.keyFile', message: expect.stringContaining('does not belong')}]})
    expect(proxy.state().reloads.failure).toBe(failuresBefore + 1)
    expect((await servedCertificate(port, 'a.test')).fingerprint256).toBe(fingerprint(rotated))
    const state = (await (await fetch(`${proxy.adminUrl}/api/state`)).json()) as {reloads: {failure: number}; tls: {certificates: {fingerprint256: string}[]}}
    expect(state).toMatchObject({reloads: {failure: failuresBefore + 1}, tls: {certificates: [{fingerprint256: fingerprint(rotated)}]}})
    expect(await h2Request(session, {':method': 'GET', ':path': '/still', ':authority': `a.test:${port}`})).toMatchObject({status: 200})
  })

  it('warns about an expired certificate at start and still serves it', async () => {
    pki.leaf('expired', ['a.test'], -1)
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const file = await writeConfig('expired', tlsConfig(v1, v2, '', '[{ certFile: expired.pem, keyFile: expired.key }]'))
    const proxy = await start(await loadProxyConfig(file))
    cleanups.push(() => proxy.close())
    expect(proxy.events).toContainEqual(expect.objectContaining({level: 'warn', msg: 'TLS certificate problem', warning: expect.stringMatching(/expired\.pem: certificate expired on /)}))
    expect(proxy.state().tls?.certificates).toMatchObject([{expired: true}])
    const result = await curl(['--cacert', pki.caFile, '--resolve', `a.test:${proxy.address.port}:127.0.0.1`, `https://a.test:${proxy.address.port}/`])
    expect(result.code).toBe(60)
    expect(result.stderr).toMatch(/expired/)
  })

  it('redirects the plain listener to https with 308, keeping host and target, and refuses hosts it cannot redirect to', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const {proxy, port} = await startTls(v1, v2, '  redirect: { listen: 127.0.0.1:0 }\n'.replace(/^/, ''))
    const redirect = proxy.redirectAddress!
    expect(proxy.state().tls?.redirect).toBe(`127.0.0.1:${redirect.port}`)
    const plain = (target: string, host: string, method = 'GET') =>
      new Promise<{status: number; location: string | undefined}>((resolve, reject) => {
        const req = httpRequest({host: '127.0.0.1', port: redirect.port, path: target, method, headers: {host}}, (res) => {
          res.resume()
          resolve({status: res.statusCode ?? 0, location: res.headers.location})
        })
        req.on('error', reject)
        req.end(method === 'POST' ? 'body' : undefined)
      })
    expect(await plain('/a/b?c=d', `a.test:${redirect.port}`)).toEqual({status: 308, location: `https://a.test:${port}/a/b?c=d`})
    expect(await plain('/form', 'a.test', 'POST')).toEqual({status: 308, location: `https://a.test:${port}/form`})
    expect(await plain('/v6', '[::1]:80')).toEqual({status: 308, location: `https://[::1]:${port}/v6`})
    expect(await plain('/x', 'evil.test/path')).toMatchObject({status: 400})
    expect(await plain('/x', 'a.test@evil.test')).toMatchObject({status: 400})
    expect(await plain('http://evil.test/x', 'a.test')).toMatchObject({status: 400})
    expect(await plain('//evil.test/x', 'a.test')).toMatchObject({status: 400})
    // curl follows the redirect onto the TLS listener and gets the upstream's answer.
    const followed = await curl(['-L', '--cacert', pki.caFile, '--resolve', `a.test:${redirect.port}:127.0.0.1`, '--resolve', `a.test:${port}:127.0.0.1`, '-w', ' %{num_redirects}', `http://a.test:${redirect.port}/followed`])
    expect(followed).toMatchObject({code: 0, stdout: 'v1 1'})
    expect(v1.requests.map((r) => r.url)).toEqual(['/followed'])
  })

  it('builds redirect locations only from well-formed hosts and origin-form targets', () => {
    expect(httpsLocation('a.test:8080', '/p?q', 443)).toBe('https://a.test/p?q')
    expect(httpsLocation('A.Test', '/', 8443)).toBe('https://A.Test:8443/')
    expect(httpsLocation('[2001:db8::1]:80', '/', 443)).toBe('https://[2001:db8::1]/')
    for (const host of [undefined, '', 'a test', 'a.test\r\nx: y', 'a.test:', '-a.test', 'a..test', 'a.test:99999999']) expect(httpsLocation(host, '/', 443)).toBeUndefined()
    for (const target of [undefined, '*', 'http://x/', '//x/', 'x']) expect(httpsLocation('a.test', target, 443)).toBeUndefined()
  })
})

describe('HTTPS upstreams', () => {
  let upstreamCert: Leaf
  let server: HttpsServer
  let upstreamPort: number
  const received: string[] = []

  beforeAll(async () => {
    upstreamCert = pki.leaf('upstream', ['up.test'])
    server = createHttpsServer({cert: upstreamCert.cert, key: upstreamCert.key}, (req, res) => {
      received.push(`${req.url} ${req.headers.host}`)
      res.end(`secure ${(req.socket as TLSSocket).servername || ''}`)
    })
    // A WebSocket-like echo after 101: every byte comes back, with TCP backpressure both ways.
    server.on('upgrade', (req, socket) => {
      received.push(`upgrade ${req.url}`)
      socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n')
      socket.pipe(socket)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    upstreamPort = (server.address() as AddressInfo).port
  })
  afterAll(() => {
    server.closeAllConnections()
    server.close()
  })

  const config = (upstreamTls: string, listener = '') => `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
${listener}routes: [{ name: r, service: app }]
services:
  app:
    ${upstreamTls}
    versions: [{ name: v1, servers: [https://127.0.0.1:${upstreamPort}] }]
`

  async function proxyWith(upstreamTls: string, listener = '') {
    const file = await writeConfig(`up-${Math.random().toString(36).slice(2)}`, config(upstreamTls, listener))
    const proxy = await start(await loadProxyConfig(file))
    cleanups.push(() => proxy.close())
    return proxy
  }

  it('verifies the upstream against the CA file with the configured SNI name', async () => {
    const proxy = await proxyWith('upstreamTls: { caFile: ca.pem, serverName: up.test }')
    expect(await curl(['-w', ' %{http_code}', `${proxy.url}/ok`])).toMatchObject({code: 0, stdout: 'secure up.test 200'})
    expect(received).toContain(`/ok 127.0.0.1:${proxy.address.port}`)
  })

  it('refuses an upstream it cannot verify: unknown CA (502), or a name the certificate does not cover (502)', async () => {
    const noCa = await proxyWith('upstreamTls: { serverName: up.test }')
    expect(await curl(['-w', ' %{http_code}', `${noCa.url}/untrusted`])).toMatchObject({stdout: 'bad gateway\n 502'})
    const wrongName = await proxyWith('upstreamTls: { caFile: ca.pem, serverName: other.test }')
    expect(await curl(['-w', ' %{http_code}', `${wrongName.url}/wrong-name`])).toMatchObject({stdout: 'bad gateway\n 502'})
    expect(received.filter((r) => r.startsWith('/untrusted') || r.startsWith('/wrong-name'))).toEqual([])
  })

  /** Upgrades through the proxy (optionally over TLS), sends `bytes`, and resolves with what came back. */
  async function upgradeEcho(proxyPort: number, secure: boolean, bytes: number): Promise<{head: string; echoed: number}> {
    const socket = secure ? connectTls({host: '127.0.0.1', port: proxyPort, servername: 'a.test', ca: pki.ca, ALPNProtocols: ['http/1.1']}) : (await import('node:net')).connect({host: '127.0.0.1', port: proxyPort})
    cleanups.push(() => void socket.destroy())
    await once(socket, secure ? 'secureConnect' : 'connect')
    socket.write('GET /ws HTTP/1.1\r\nhost: a.test\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n')
    let head = ''
    let headDone = false
    let echoed = 0
    return new Promise((resolve, reject) => {
      socket.on('error', reject)
      socket.on('end', () => resolve({head, echoed}))
      socket.on('data', (chunk: Buffer) => {
        if (!headDone) {
          head += chunk.toString('latin1')
          const end = head.indexOf('\r\n\r\n')
          if (end === -1) return
          headDone = true
          echoed += Buffer.byteLength(head.slice(end + 4), 'latin1')
          head = head.slice(0, end)
          if (!head.startsWith('HTTP/1.1 101')) return resolve({head, echoed})
          // 8 MiB in 64 KiB writes, far more than the socket buffers hold: it only passes with backpressure working.
          const block = Buffer.alloc(64 * 1024, 0x61)
          let sent = 0
          const pump = () => {
            while (sent < bytes) {
              sent += block.length
              if (!socket.write(block)) return void socket.once('drain', pump)
            }
          }
          pump()
        } else {
          echoed += chunk.length
        }
        if (echoed >= bytes) {
          socket.end()
          resolve({head, echoed})
        }
      })
    })
  }

  it('tunnels a WebSocket upgrade to an https:// upstream over TLS, from a plain and from a TLS listener, with backpressure', async () => {
    const plain = await proxyWith('upstreamTls: { caFile: ca.pem, serverName: up.test }')
    const bytes = 8 * 1024 * 1024
    expect(await upgradeEcho(plain.address.port, false, bytes)).toMatchObject({head: expect.stringMatching(/^HTTP\/1\.1 101/), echoed: bytes})
    const secure = await proxyWith('upstreamTls: { caFile: ca.pem, serverName: up.test }', `tls:\n  certificates: [{ certFile: a.pem, keyFile: a.key }]\n`)
    expect(await upgradeEcho(secure.address.port, true, bytes)).toMatchObject({head: expect.stringMatching(/^HTTP\/1\.1 101/), echoed: bytes})
  })

  it('answers 502 to an upgrade whose https:// upstream never finishes its handshake, after timeouts.connectMs', async () => {
    const {createServer: createTcpServer} = await import('node:net')
    const silent = createTcpServer((socket) => socket.on('error', () => undefined))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    cleanups.push(() => void silent.close())
    const file = await writeConfig(`stall-${Math.random().toString(36).slice(2)}`, `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
timeouts: { connectMs: 200 }
routes: [{ name: r, service: app }]
services:
  app:
    upstreamTls: { caFile: ca.pem, serverName: up.test }
    versions: [{ name: v1, servers: [https://127.0.0.1:${(silent.address() as AddressInfo).port}] }]
`)
    const proxy = await start(await loadProxyConfig(file))
    cleanups.push(() => proxy.close())
    expect(await upgradeEcho(proxy.address.port, false, 1)).toMatchObject({head: expect.stringMatching(/^HTTP\/1\.1 502/)})
  })

  it('answers 502 to an upgrade whose https:// upstream fails verification', async () => {
    const proxy = await proxyWith('upstreamTls: { serverName: up.test }')
    const before = received.length
    expect(await upgradeEcho(proxy.address.port, false, 1)).toMatchObject({head: expect.stringMatching(/^HTTP\/1\.1 502/)})
    expect(received.length).toBe(before)
  })
})

describe('clustered proxy (built CLI, `npm run build` first)', () => {
  it('--check exits 3 naming the file, line and field of a key that does not match its certificate', async () => {
    const file = await writeConfig('check-cli', `listen: 127.0.0.1:0\ntls:\n  certificates:\n    - { certFile: a.pem, keyFile: b.key }\nroutes: [{ name: r, service: s }]\nservices:\n  s:\n    versions: [{ name: v1, servers: [http://127.0.0.1:9] }]\n`)
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/run.js'), 'proxy', '--config', file, '--check'], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const [code] = (await once(child, 'exit')) as [number]
    expect(code).toBe(3)
    expect(stderr).toContain(`${file}:4:35 tls.certificates.0.keyFile: ${b.keyFile}: this key does not belong to the certificate in ${a.certFile}`)
  })

  it('--workers 2 serves HTTP/2 over TLS and rotates the certificate in every worker without dropping an open session', async () => {
    const [v1, v2] = [await upstream('v1'), await upstream('v2')]
    const first = pki.leaf('crot1', ['a.test'])
    const rotated = pki.leaf('crot2', ['a.test'])
    writeFileSync(join(pki.dir, 'cluster.pem'), first.cert)
    writeFileSync(join(pki.dir, 'cluster.key'), first.key)
    const file = await writeConfig('cluster', tlsConfig(v1, v2, '  redirect: { listen: 127.0.0.1:0 }\n', '[{ certFile: cluster.pem, keyFile: cluster.key }]'))
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../bin/run.js'), 'proxy', '--config', file, '--workers', '2'], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    })
    const listening = await new Promise<{listen: string; admin: string; url: string; redirect: string}>((resolve, reject) => {
      let stdout = ''
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString()
        const line = stdout.split('\n').find((l) => l.includes('"listening"'))
        if (line !== undefined) resolve(JSON.parse(line) as never)
      })
      child.once('exit', (code) => reject(new Error(`canary proxy exited ${code}: ${stderr}`)))
    })
    const port = Number(listening.listen.split(':').at(-1))
    expect(listening.url).toBe(`https://127.0.0.1:${port}`)
    const redirected = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', 'host: a.test', `http://${listening.redirect}/r`])
    expect(redirected.stdout).toBe(`308 https://a.test:${port}/r`)

    const session = await h2Session(port)
    expect(await h2Request(session, {':method': 'GET', ':path': '/before', ':authority': `a.test:${port}`})).toMatchObject({status: 200, text: 'v1'})
    // Several connections, so both workers answer some of them.
    for (let i = 0; i < 6; i++) expect(await curl(['--cacert', pki.caFile, '--resolve', `a.test:${port}:127.0.0.1`, '--http2', `https://a.test:${port}/c${i}`])).toMatchObject({code: 0, stdout: 'v1'})

    writeFileSync(join(pki.dir, 'cluster.key.tmp'), rotated.key)
    writeFileSync(join(pki.dir, 'cluster.pem.tmp'), rotated.cert)
    renameSync(join(pki.dir, 'cluster.key.tmp'), join(pki.dir, 'cluster.key'))
    renameSync(join(pki.dir, 'cluster.pem.tmp'), join(pki.dir, 'cluster.pem'))
    const admin = `http://${listening.admin}`
    await eventually(async () => {
      const state = (await (await fetch(`${admin}/api/state`)).json()) as {tls: {certificates: {fingerprint256: string}[]}}
      return state.tls.certificates[0]?.fingerprint256 === fingerprint(rotated)
    }, 10_000)
    // Every new handshake, whichever worker takes it, gets the rotated certificate.
    for (let i = 0; i < 8; i++) expect((await servedCertificate(port, 'a.test')).fingerprint256).toBe(fingerprint(rotated))
    expect(await h2Request(session, {':method': 'GET', ':path': '/after', ':authority': `a.test:${port}`})).toMatchObject({status: 200, text: 'v1'})
    expect(stderr).not.toMatch(/"level":"error"/)
  })
})
