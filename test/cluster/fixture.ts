/**
 * The cluster suite's fixture: the running harness (`npm run cluster:up`, or vitest's global setup),
 * a fresh namespace per test (namespaces are never deleted: no namespace controller), the CI
 * identity bound to exactly `canary render --rbac` through a real ServiceAccount token, backends in
 * the harness's pods with their EndpointSlices, the built CLI, kubectl, and traffic counted per
 * version through the real data plane.
 */
import {spawn, spawnSync} from 'node:child_process'
import {appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, watch, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {clusterInfo, isAlive, kubeconfigText, renderRbacAsync, type ClusterInfo} from '../../scripts/cluster/cluster.js'
import {endpointSlice, getThrough, startBackend, type Pod, type PodProcess} from '../../scripts/cluster/pods.js'
import {canary as runCanary, type CliResult} from '../helpers/lifecycle.js'

export const cluster: ClusterInfo = clusterInfo()

/** kubectl as the administrator; throws with kubectl's stderr on failure. */
export function kubectl(args: readonly string[], input?: string, kubeconfig = cluster.adminKubeconfig): string {
  const result = spawnSync(cluster.binaries.kubectl, ['--kubeconfig', kubeconfig, ...args], {input, encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`)
  return result.stdout
}

/** An object as kubectl prints it: tests read the fields they check. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KubeJson = Record<string, any>

/** kubectl (as the administrator unless told) without blocking the test process (concurrent tests share it). */
export function kubectlAsync(args: readonly string[], input?: string, kubeconfig = cluster.adminKubeconfig): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cluster.binaries.kubectl, ['--kubeconfig', kubeconfig, ...args], {stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    child.once('error', reject)
    child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(Object.assign(new Error(`kubectl ${args.join(' ')} (exit ${code}): ${stderr}`), {stdout}))))
    child.stdin.end(input ?? '')
  })
}

/** `kubectl get -o json` of one object, or undefined when it does not exist. */
export function kubectlGet(namespace: string, resource: string, name: string): KubeJson | undefined {
  const result = spawnSync(cluster.binaries.kubectl, ['--kubeconfig', cluster.adminKubeconfig, '-n', namespace, 'get', resource, name, '-o', 'json', '--ignore-not-found'], {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`kubectl get ${resource} ${name}: ${result.stderr}`)
  return result.stdout.trim() === '' ? undefined : (JSON.parse(result.stdout) as KubeJson)
}

let namespaceCounter = 0

/** A release in a fresh namespace, with its spec file, CI kubeconfig and the pods it leased. */
export interface ClusterRelease {
  readonly namespace: string
  readonly host: string
  readonly dir: string
  readonly ciKubeconfig: string
  /** The built CLI as the CI identity: `canary ARGS --target kubernetes --kubeconfig <ci>`. */
  canary(args: readonly string[]): Promise<CliResult>
  /** Backends started for this release (stopped by `dispose`). */
  readonly processes: PodProcess[]
  /** A pod of the harness for this release alone until `dispose` (files and tests run concurrently). */
  leasePod(): Promise<Pod>
  dispose(): Promise<void>
}

/** The release spec the suite uses: `web` in `namespace`, routed by `router`, judged from the harness's Prometheus. */
export function releaseSpec(namespace: string, router: string, extraSpec: readonly string[] = [], analysis = ''): string {
  const host = `${namespace}.cluster.test`
  // Traefik's plain Ingress provider also serves Ingresses without a class: the ingress-nginx
  // provider's canary Ingress must name class nginx, as it would on a cluster with both controllers.
  const routerFields = {'gateway-api': ', gateway: {name: public, namespace: shop}', nginx: ', className: nginx'}[router] ?? ''
  // Gateway API has no built-in queries (metrics are the implementation's): Traefik names a backend
  // httproute-<ns>-<route>-gw-<gateway ns>-<gateway>-ep-<entry point>-<rule>-<hash>-svc-<ns>-<service>-<ref>.
  const traefikService = `service=~".*-svc-{{namespace}}-{{service}}-[0-9]+@kubernetesgateway"`
  const queries = router === 'gateway-api' && !analysis.includes('queries')
    ? `, queries: {requests: 'sum(increase(traefik_service_requests_total{${traefikService}}[{{interval}}]))', successRate: 'sum(increase(traefik_service_requests_total{${traefikService},code!~"5.."}[{{interval}}])) / sum(increase(traefik_service_requests_total{${traefikService}}[{{interval}}]))'}`
    : ''
  return [
    'apiVersion: canary.dev/v1alpha1',
    'kind: Release',
    `metadata: {name: web, namespace: ${namespace}}`,
    'spec:',
    '  image: ghcr.io/acme/web:v1',
    '  port: 8080',
    `  ingress: {host: ${host}, router: ${router}${routerFields}}`,
    '  steps: [10, 50, 100]',
    '  target: kubernetes',
    // Router proxy is judged from its pods' /metrics read through the API server's pod proxy.
    // A demo-sized judge (as in the local e2e fixtures): minutes of error-free test traffic cannot prove the 0.1-point default.
    // A look every second: evidence accrues every second whatever the interval (docs/analysis.md),
    // so a longer interval only delays the look that passes a step; these tests are about plumbing.
    `  analysis: {interval: 1s, minRequests: 20, progressDeadline: 30s, maxFalsePassRate: 0.2, tolerance: {errorRate: {points: 5}, latency: {points: 20}}${router === 'proxy' ? '' : `, prometheus: {url: '${cluster.prometheusUrl}'${queries}${analysis}}`}}`,
    ...extraSpec,
    '',
  ].join('\n')
}

/**
 * A fresh namespace with the release's spec, `canary render --rbac` applied by the administrator,
 * and a kubeconfig holding a token the API server issued for the rendered ServiceAccount.
 */
export async function aClusterRelease(router: string, options: {extraSpec?: readonly string[]; analysis?: string; specText?: (namespace: string) => string} = {}): Promise<ClusterRelease> {
  const namespace = `t${process.pid % 10_000}-${++namespaceCounter}-${router}`
  await kubectlAsync(['create', 'namespace', namespace])
  const dir = mkdtempSync(join(tmpdir(), 'canary-cluster-'))
  const spec = options.specText?.(namespace) ?? releaseSpec(namespace, router, options.extraSpec, options.analysis)
  writeFileSync(join(dir, 'canary.yaml'), spec)
  await kubectlAsync(['apply', '--server-side', '--field-manager=cluster-admin', '-f', '-'], await renderRbacAsync(spec))
  const token = (await kubectlAsync(['-n', namespace, 'create', 'token', 'canary', '--duration=2h'])).trim()
  const ciKubeconfig = join(dir, 'ci.kubeconfig')
  writeFileSync(ciKubeconfig, kubeconfigText(cluster.apiServer, cluster.caFile, 'canary-ci', token, namespace), {mode: 0o600})
  const processes: PodProcess[] = []
  const leased: Pod[] = []
  return {
    namespace, host: `${namespace}.cluster.test`, dir, ciKubeconfig, processes,
    canary: (args) => runCanary([...args, '--target', 'kubernetes', '--kubeconfig', ciKubeconfig], dir, {KUBECONFIG: ''}),
    async leasePod() {
      const pod = await leasePod()
      leased.push(pod)
      return pod
    },
    async dispose() {
      await Promise.all(processes.map((p) => p.stop()))
      for (const pod of leased.splice(0)) releasePod(pod)
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

/** The pods tests may lease (pod 0 is the harness's smoke test's). */
const leasablePods: readonly Pod[] = cluster.pods.slice(1)
/** One folder per leased pod, made with mkdir (atomic across the suite's worker processes), holding the owner's pid. */
const leaseDir = join(cluster.runDir, 'pod-leases')
mkdirSync(leaseDir, {recursive: true})
const LEASE_WAIT_MS = 180_000

/** Takes `pod` for this process, or takes it back from a process that died holding it; false when another live process holds it. */
function tryLease(pod: Pod): boolean {
  const dir = join(leaseDir, pod.netns)
  try {
    mkdirSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    let owner = Number.NaN
    try {
      owner = Number(readFileSync(join(dir, 'pid'), 'utf8'))
    } catch {
      return false // being written by its new owner
    }
    if (Number.isNaN(owner) || isAlive(owner)) return false
    // A worker that died holding it: rename first, so of two processes reclaiming it only one succeeds.
    try {
      renameSync(dir, `${dir}.stale-${process.pid}`)
    } catch {
      return false
    }
    rmSync(`${dir}.stale-${process.pid}`, {recursive: true, force: true})
    // Its backends outlived it: they would hold the pod's ports.
    for (const pid of spawnSync('ip', ['netns', 'pids', pod.netns], {encoding: 'utf8'}).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // already gone
      }
    }
    return tryLease(pod)
  }
  writeFileSync(join(dir, 'pid'), String(process.pid))
  return true
}

/** A pod no other test holds; waits for a release (a file-system event) when all are leased. */
export async function leasePod(): Promise<Pod> {
  const deadline = Date.now() + LEASE_WAIT_MS
  for (;;) {
    const watcher = watch(leaseDir)
    try {
      const released = new Promise<void>((resolve) => watcher.once('change', () => resolve()))
      const pod = leasablePods.find(tryLease)
      if (pod !== undefined) return pod
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`all ${leasablePods.length} pods of the harness stayed leased for ${LEASE_WAIT_MS / 1000} s: lower the cluster suite's concurrency (vitest.cluster.config.ts) or raise POD_COUNT (scripts/cluster/cluster.ts)`)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([released, new Promise((resolve) => (timer = setTimeout(resolve, left)))])
      clearTimeout(timer)
    } finally {
      watcher.close()
    }
  }
}

/** Gives a leased pod back (its processes already stopped). */
export function releasePod(pod: Pod): void {
  rmSync(join(leaseDir, pod.netns), {recursive: true, force: true})
}

/**
 * Starts the backend `name` in a pod leased for the release and publishes it as the endpoint of Service `service`: an
 * EndpointSlice for Traefik, and a hosts entry `<service>.<ns>.svc.cluster.local` in every pod (the
 * cluster DNS stand-in; `ip netns exec` mounts /etc/netns/<netns>/hosts over /etc/hosts).
 */
export async function serve(release: ClusterRelease, service: string, name: string, options: {errorPercent?: number; port?: number} = {}): Promise<PodProcess & {readonly pod: Pod}> {
  const pod = await release.leasePod()
  const process = await startBackend(pod, name, options)
  release.processes.push(process)
  await kubectlAsync(['apply', '--server-side', '--field-manager=cluster-endpoints', '-f', '-'], endpointSlice(release.namespace, service, [pod.ip], options.port ?? 8080))
  addHostsEntry(`${service}.${release.namespace}.svc.cluster.local ${service}.${release.namespace}.svc`, pod.ip)
  return {...process, pod}
}

/** Requests a backend started by `serve` has answered, read at its pod once it has had none for 300 ms. */
export async function servedCount(pod: Pod, port = 8080): Promise<number> {
  const response = await getThrough(`http://${pod.ip}:${port}/served?quietMs=300`, {})
  if (response.status !== 200) throw new Error(`backend at ${pod.ip}:${port}: /served answered ${response.status}: ${response.body}`)
  return (JSON.parse(response.body) as {served: number}).served
}

/** Adds `ip names` to every pod's hosts file (written in place: `ip netns exec` bind-mounts it). */
export function addHostsEntry(names: string, ip: string): void {
  for (const pod of cluster.pods) {
    const dir = join('/etc/netns', pod.netns)
    mkdirSync(dir, {recursive: true})
    appendFileSync(join(dir, 'hosts'), `${ip} ${names}\n`)
  }
}

/**
 * `count` requests to `url` with `headers` (Host picks the route); answers counted by version
 * (`x-version`) and status. One `curl --parallel` (`connections` keep-alive connections) sends them all:
 * a C client, so measuring 1,000 requests costs Traefik's time, not the test process's CPU.
 * Traefik's WRR picks in arrival order, so the split is exact however many are in flight.
 */
export async function sample(url: string, headers: Readonly<Record<string, string>>, count: number, connections = 8): Promise<{versions: Record<string, number>; statuses: Record<number, number>}> {
  const config = [
    ...Object.entries(headers).map(([name, value]) => `header = ${JSON.stringify(`${name}: ${value}`)}`),
    ...Array.from({length: count}, () => `url = ${JSON.stringify(url)}\noutput = "/dev/null"`),
    '',
  ].join('\n')
  const lines = await new Promise<string[]>((resolve, reject) => {
    const curl = spawn('curl', ['--silent', '--no-progress-meter', '--parallel', '--parallel-max', String(connections), '--write-out', '%{http_code} %header{x-version}\\n', '--config', '-'], {stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    curl.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    curl.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    curl.once('error', (error) => reject(new Error(`curl (the cluster suite's HTTP client: apt-get install curl): ${error.message}`)))
    curl.once('close', (code) => {
      // curl exits non-zero when a transfer failed; such an answer still prints a line (status 000).
      if (stdout === '' && code !== 0) reject(new Error(`curl exited ${code}: ${stderr}`))
      else resolve(stdout.split('\n').filter(Boolean))
    })
    curl.stdin.end(config)
  })
  if (lines.length !== count) throw new Error(`curl answered ${lines.length} of ${count} requests to ${url}`)
  const versions: Record<string, number> = {}
  const statuses: Record<number, number> = {}
  for (const line of lines) {
    const [code, version] = line.split(' ')
    const status = Number(code)
    const key = version === undefined || version === '' ? `none:${status}` : version
    versions[key] = (versions[key] ?? 0) + 1
    statuses[status] = (statuses[status] ?? 0) + 1
  }
  return {versions, statuses}
}

/**
 * Waits until the data plane serves `canaryPercent` (a 100-request window within 2 of it: WRR is
 * deterministic, so a stale configuration is far off), then measures `count` requests.
 */
export async function measuredSplit(url: string, headers: Readonly<Record<string, string>>, canaryPercent: number, count = 1000): Promise<{canary: number; stable: number; other: number}> {
  const deadline = Date.now() + 30_000
  let last: Record<string, number> = {}
  for (;;) {
    last = (await sample(url, headers, 100)).versions
    if (Math.abs((last.v2 ?? 0) - canaryPercent) <= 2 && (last.v1 ?? 0) + (last.v2 ?? 0) === 100) break
    if (Date.now() > deadline) throw new Error(`the data plane did not reach ${canaryPercent} % canary within 30 s; last 100 requests: ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const {versions} = await sample(url, headers, count)
  return {canary: versions.v2 ?? 0, stable: versions.v1 ?? 0, other: count - (versions.v2 ?? 0) - (versions.v1 ?? 0)}
}

/**
 * Steady traffic while a command judges metrics: batches of 100 requests on four keep-alive
 * connections, back to back. The judge's evidence grows with the requests it sees (docs/analysis.md),
 * so the faster the traffic, the sooner a healthy step passes or a bad canary is rolled back.
 * `stop` returns the statuses seen.
 */
export function steadyTraffic(url: string, headers: Readonly<Record<string, string>>): {stop: () => Promise<Record<number, number>>} {
  const statuses: Record<number, number> = {}
  let running = true
  const loop = async () => {
    while (running) {
      const batch = await sample(url, headers, 100, 4).catch(() => ({statuses: {0: 1}}))
      for (const [status, count] of Object.entries(batch.statuses)) statuses[Number(status)] = (statuses[Number(status)] ?? 0) + count
    }
  }
  const done = loop()
  return {
    async stop() {
      running = false
      await done
      return statuses
    },
  }
}
