/**
 * canary's own Kubernetes client against real servers: kubeconfig merging and relative paths,
 * every credential kind (token file, exec plugin, client certificate over verified TLS, oidc
 * id-token), the refusals (proxy-url, other auth providers), TLS failures, a kind the server does
 * not serve, and the read cache's rules.
 */
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:https'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {TLSSocket} from 'node:tls'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError, ConflictError, NotFoundError, UnreachableError} from '../../src/errors.js'
import {connectKube} from '../../src/kube/client.js'
import {ReadCachingKubeClient} from '../../src/kube/read-caching-client.js'
import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {makePki, type Pki} from '../proxy/pki.js'
import {rejection} from '../helpers/rejection.js'

let fake: FakeApiServer
let dir: string
const signal = new AbortController().signal
const cm = (name: string) => ({apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name})

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  fake.seed({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'seen', namespace: 'shop'}, data: {a: '1'}})
  dir = mkdtempSync(join(tmpdir(), 'canary-kubeconfig-'))
})

afterEach(async () => {
  await fake.close()
  rmSync(dir, {recursive: true, force: true})
})

/** A one-context kubeconfig for the fake server with `user` as the user entry (YAML flow mapping). */
function kubeconfigWith(user: string, cluster = `{server: '${fake.url}'}`, file = 'config'): string {
  const path = join(dir, file)
  writeFileSync(path, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: ${cluster}}]\nusers: [{name: u, user: ${user}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: shop}}]\ncurrent-context: x\n`)
  return path
}

describe('kubeconfig resolution', () => {
  it('merges KUBECONFIG files as kubectl does: the first file to name a cluster, user, context or current context wins', async () => {
    const first = join(dir, 'first')
    const second = join(dir, 'second')
    writeFileSync(first, `clusters: [{name: c, cluster: {server: '${fake.url}'}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: shop}}]\ncurrent-context: x\n`)
    writeFileSync(second, `clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: fake-token}}]\ncurrent-context: elsewhere\n`)
    const saved = process.env.KUBECONFIG
    process.env.KUBECONFIG = [join(dir, 'missing'), first, second].join(':')
    try {
      const client = await connectKube()
      expect(client.server).toBe(fake.url)
      expect(client.namespace).toBe('shop')
      expect((await client.read(cm('seen'), signal))?.data).toEqual({a: '1'})
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG
      else process.env.KUBECONFIG = saved
    }
  })

  it('reads tokenFile relative to the kubeconfig, again for every command', async () => {
    writeFileSync(join(dir, 'token'), 'fake-token\n')
    const path = kubeconfigWith('{tokenFile: token}')
    expect((await (await connectKube({kubeconfig: path})).read(cm('seen'), signal))?.data).toEqual({a: '1'})
    writeFileSync(join(dir, 'token'), 'rotated-away\n')
    const error = await rejection((await connectKube({kubeconfig: path})).read(cm('seen'), signal))
    expect(error.message).toContain('did not accept the credentials')
  })

  it('runs an exec credential plugin once per client, with KUBERNETES_EXEC_INFO, and uses its token', async () => {
    const log = join(dir, 'plugin.log')
    const plugin = join(dir, 'plugin.sh')
    writeFileSync(plugin, `#!/bin/sh\necho "$KUBERNETES_EXEC_INFO $1" >> ${log}\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"fake-token"}}'\n`)
    chmodSync(plugin, 0o755)
    const client = await connectKube({kubeconfig: kubeconfigWith(`{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./plugin.sh, args: [--cluster], interactiveMode: Never}}`)})
    await client.read(cm('seen'), signal)
    await client.read(cm('seen'), signal)
    const calls = readFileSync(log, 'utf8').trim().split('\n')
    expect(calls).toHaveLength(1)
    expect(JSON.parse(calls[0]!.replace(/ --cluster$/, ''))).toMatchObject({kind: 'ExecCredential', apiVersion: 'client.authentication.k8s.io/v1', spec: {interactive: false}})
  })

  it('a failing exec plugin is exit 3 naming the plugin and what it said', async () => {
    const plugin = join(dir, 'broken.sh')
    writeFileSync(plugin, '#!/bin/sh\necho "token expired, run login" >&2\nexit 1\n')
    chmodSync(plugin, 0o755)
    const client = await connectKube({kubeconfig: kubeconfigWith(`{exec: {command: ${plugin}}}`)})
    const error = await rejection(client.read(cm('seen'), signal))
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).exitCode).toBe(3)
    expect(error.message).toContain(`credential plugin ${plugin} failed: token expired, run login`)
  })

  it('uses the oidc provider\'s id-token; refuses proxy-url and other auth providers with exit 3 naming them', async () => {
    expect(await (await connectKube({kubeconfig: kubeconfigWith(`{auth-provider: {name: oidc, config: {id-token: fake-token}}}`)})).read(cm('seen'), signal)).toBeDefined()
    const gcp = await rejection(connectKube({kubeconfig: kubeconfigWith(`{auth-provider: {name: gcp, config: {}}}`)}))
    expect(gcp).toBeInstanceOf(ConfigError)
    expect(gcp.message).toContain('user "u" uses auth-provider gcp, which canary does not support')
    const proxied = await rejection(connectKube({kubeconfig: kubeconfigWith('{token: fake-token}', `{server: '${fake.url}', proxy-url: 'http://proxy:3128'}`)}))
    expect(proxied).toBeInstanceOf(ConfigError)
    expect(proxied.message).toContain('cluster "c" sets proxy-url')
  })

  it('a context whose cluster is missing is exit 3 naming it', async () => {
    const path = join(dir, 'config')
    writeFileSync(path, 'contexts: [{name: x, context: {cluster: nowhere, user: u}}]\ncurrent-context: x\n')
    const error = await rejection(connectKube({kubeconfig: path}))
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message).toContain('cluster "nowhere" is not defined')
  })

  it('a kind the server does not serve is an error (exit 4), never "absent"', async () => {
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    const error = await rejection(client.read({apiVersion: 'example.com/v1', kind: 'Widget', namespace: 'shop', name: 'w'}, signal))
    expect(error).toBeInstanceOf(NotFoundError)
    expect((error as NotFoundError).exitCode).toBe(4)
  })
})

describe('TLS', () => {
  let pki: Pki
  let server: Server
  let seenClient: string | undefined

  beforeEach(async () => {
    pki = makePki()
    const serverCert = pki.leaf('apiserver', ['localhost', 'IP:127.0.0.1'])
    server = createServer({cert: serverCert.cert, key: serverCert.key, ca: pki.ca, requestCert: true, rejectUnauthorized: false}, (request, response) => {
      const peer = (request.socket as TLSSocket).getPeerCertificate()
      seenClient = (request.socket as TLSSocket).authorized ? String(peer.subject?.CN ?? '') : undefined
      response.writeHead(200, {'content-type': 'application/json'})
      response.end(JSON.stringify({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'seen', namespace: 'shop'}, data: {tls: 'yes'}}))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  })

  afterEach(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    pki.remove()
  })

  const url = () => `https://127.0.0.1:${(server.address() as AddressInfo).port}`

  it('verifies the server with certificate-authority (a path relative to the kubeconfig) and presents the client certificate', async () => {
    const client = pki.leaf('ci-user', ['ci-user'])
    writeFileSync(join(dir, 'ca.pem'), pki.ca)
    const path = kubeconfigWith(`{client-certificate-data: ${Buffer.from(client.cert).toString('base64')}, client-key: ${client.keyFile}}`, `{server: '${url()}', certificate-authority: ca.pem}`)
    const read = await (await connectKube({kubeconfig: path})).read(cm('seen'), signal)
    expect(read?.data).toEqual({tls: 'yes'})
    expect(seenClient).toBe('ci-user')
  })

  it('a server certificate the CA did not sign is exit 6 naming the TLS failure; insecure-skip-tls-verify accepts it', async () => {
    const other = makePki()
    try {
      const strict = kubeconfigWith('{token: t}', `{server: '${url()}', certificate-authority-data: ${Buffer.from(other.ca).toString('base64')}}`)
      const error = await rejection((await connectKube({kubeconfig: strict})).read(cm('seen'), signal))
      expect(error).toBeInstanceOf(UnreachableError)
      expect(error.message).toMatch(/is unreachable \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/)
      const insecure = kubeconfigWith('{token: t}', `{server: '${url()}', insecure-skip-tls-verify: true}`, 'insecure')
      expect((await (await connectKube({kubeconfig: insecure})).read(cm('seen'), signal))?.data).toEqual({tls: 'yes'})
    } finally {
      other.remove()
    }
  })
})

describe('the read cache (one view of the cluster)', () => {
  const gets = (name: string) => fake.requests.filter((r) => r.method === 'GET' && r.name === name).length

  it('reads an object once until forget(), and answers reads after a write from the write', async () => {
    const client = new ReadCachingKubeClient(await connectKube({kubeconfig: fake.kubeconfigPath}))
    await client.read(cm('seen'), signal)
    const copy = await client.read(cm('seen'), signal)
    expect(gets('seen')).toBe(1)
    copy!.data = {changed: 'by the caller'}
    expect((await client.read(cm('seen'), signal))?.data).toEqual({a: '1'})
    await client.apply({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'seen', namespace: 'shop'}, data: {a: '2'}}, {force: true}, signal)
    expect((await client.read(cm('seen'), signal))?.data).toEqual({a: '2'})
    expect(gets('seen')).toBe(1)
    client.forget()
    await client.read(cm('seen'), signal)
    expect(gets('seen')).toBe(2)
  })

  it('forgets an object whose write failed (a lost race) and one it deleted', async () => {
    const client = new ReadCachingKubeClient(await connectKube({kubeconfig: fake.kubeconfigPath}))
    const stale = await client.read(cm('seen'), signal)
    await (await connectKube({kubeconfig: fake.kubeconfigPath})).mergePatch(cm('seen'), {data: {a: 'someone else'}}, signal)
    expect(await rejection(client.replace(stale!, signal))).toBeInstanceOf(ConflictError)
    expect((await client.read(cm('seen'), signal))?.data).toEqual({a: 'someone else'})
    await client.delete(cm('seen'), signal)
    expect(await client.read(cm('seen'), signal)).toBeUndefined()
    expect(gets('seen')).toBe(3)
  })
})
