/**
 * End to end: the built CLI (`npm run build` first; `npm test` does it) as a child process against
 * the fake API server through a kubeconfig, exactly as a CI job would run it.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {canary as runCanary, type CliResult} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 120_000})


const SPEC = `apiVersion: canary.dev/v1alpha1
kind: Release
metadata: {name: web, namespace: shop}
spec:
  image: ghcr.io/acme/web:v1
  port: 8080
  ingress: {host: web.example.com, router: nginx}
  steps: [10, 50, 100]
  analysis: {interval: 1s, progressDeadline: 30s, prometheus: {url: 'http://127.0.0.1:9'}}
`

/** The built CLI as a child process, with no ambient kubeconfig. */
function canary(args: readonly string[], cwd: string): Promise<CliResult> {
  return runCanary(args, cwd, {KUBECONFIG: ''})
}

let fake: FakeApiServer
let dir: string

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  dir = mkdtempSync(join(tmpdir(), 'canary-kube-e2e-'))
  writeFileSync(join(dir, 'canary.yaml'), SPEC)
})

afterEach(async () => {
  await fake.close()
  rmSync(dir, {recursive: true, force: true})
})

describe('canary on a cluster (built CLI, fake API server)', () => {
  it('start → status → abort with --target kubernetes --kubeconfig', async () => {
    const kube = ['--target', 'kubernetes', '--kubeconfig', fake.kubeconfigPath]
    const start = await canary(['start', '--image', 'v2', ...kube, '--json'], dir)
    expect(start.stderr).not.toMatch(/Error/)
    expect(start.code).toBe(0)
    expect(JSON.parse(start.stdout)).toMatchObject({phase: 'Progressing', canaryWeight: 10})
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeDefined()
    const status = await canary(['status', ...kube, '--json'], dir)
    expect(JSON.parse(status.stdout)).toMatchObject({phase: 'Progressing', canaryWeight: 10})
    const abort = await canary(['abort', ...kube, '--json'], dir)
    expect(JSON.parse(abort.stdout)).toMatchObject({phase: 'Aborted'})
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeUndefined()
    expect(fake.get('networking.k8s.io/v1', 'Ingress', 'shop', 'web-canary')).toBeUndefined()
  })

  it('an unreachable API server exits 6 with a message naming the server', async () => {
    const run = await canary(['start', '--image', 'v2', '--target', 'kubernetes', '--kubeconfig', fake.kubeconfigPath, '--context', 'elsewhere'], dir)
    expect(run.code).toBe(6)
    expect(run.stderr).toContain('Error [E_UNREACHABLE]')
    expect(run.stderr).toContain('http://127.0.0.1:9')
  })

  it('an RBAC denial exits 3 naming the verb and the resource, with the --rbac hint', async () => {
    fake.denyRules.push({verb: 'patch', resource: 'deployments'})
    const run = await canary(['start', '--image', 'v2', '--target', 'kubernetes', '--kubeconfig', fake.kubeconfigPath, '--json'], dir)
    expect(run.code).toBe(3)
    const error = (JSON.parse(run.stdout) as {error: {code: string; message: string; verb: string; resource: string; suggestions: string[]}}).error
    expect(error).toMatchObject({code: 'E_FORBIDDEN', verb: 'patch', resource: 'deployments.apps'})
    expect(error.message).toContain('cannot patch resource "deployments"')
    expect(error.suggestions.join(' ')).toContain('canary render --rbac')
  })

  it('render --rbac prints the least-privilege ServiceAccount, Role and RoleBinding', async () => {
    const run = await canary(['render', '--rbac', '--json'], dir)
    expect(run.code).toBe(0)
    const result = JSON.parse(run.stdout) as {rbac: Array<{kind: string; rules?: Array<{resources: string[]; verbs: string[]}>}>}
    expect(result.rbac.map((o) => o.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding'])
    expect(result.rbac[1]?.rules?.find((r) => r.resources.includes('ingresses'))?.verbs).toEqual(['get', 'create', 'patch', 'delete'])
  })

  it('run: judged from Prometheus (ingress-nginx queries), promoted, exit 0', async () => {
    const seen: string[] = []
    const prometheus = http.createServer((request, response) => {
      const query = new URL(request.url ?? '/', 'http://p').searchParams.get('query') ?? ''
      seen.push(query)
      const canary = query.includes('canary!=""')
      // increase() over a window grows with it, as a real Prometheus' does: 20 and 100 requests/s.
      const seconds = Number(/\[(\d+)s\]/.exec(query)?.[1] ?? '1')
      const requests = (canary ? 20 : 100) * seconds
      const value = query.includes('status=~"5.."') ? 0 : requests
      const result = query.includes('_bucket')
        ? [{metric: {le: '0.1'}, value: [0, String(requests)]}, {metric: {le: '+Inf'}, value: [0, String(requests)]}]
        : [{metric: {}, value: [0, String(value)]}]
      response.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({status: 'success', data: {resultType: 'vector', result}}))
    })
    await new Promise<void>((resolve) => prometheus.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(prometheus.address() as AddressInfo).port}`
      writeFileSync(join(dir, 'canary.yaml'), SPEC.replace("'http://127.0.0.1:9'", `'${url}'`).replace('steps: [10, 50, 100]', 'steps: [50, 100]').replace('interval: 1s', 'interval: 1s, minRequests: 10, maxFalsePassRate: 0.5, tolerance: {errorRate: {points: 20}, latency: {points: 50}}'))
      const run = await canary(['run', '--image', 'v2', '--target', 'kubernetes', '--kubeconfig', fake.kubeconfigPath, '--json'], dir)
      expect(run.code).toBe(0)
      expect((JSON.parse(run.stdout) as {status: {phase: string}}).status.phase).toBe('Promoted')
      expect(seen.some((q) => q.startsWith('sum(increase(nginx_ingress_controller_requests{namespace="shop",ingress="web",canary!=""}'))).toBe(true)
      const web = fake.get('apps/v1', 'Deployment', 'shop', 'web') as {spec: {template: {spec: {containers: Array<{image: string}>}}}}
      expect(web.spec.template.spec.containers[0]?.image).toBe('ghcr.io/acme/web:v2')
    } finally {
      prometheus.closeAllConnections()
      prometheus.close()
    }
  })
})
