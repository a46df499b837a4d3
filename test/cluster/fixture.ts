/**
 * The cluster suite's fixture: the running harness (`npm run cluster:up`, or vitest's global setup),
 * a fresh namespace per test (namespaces are never deleted: no namespace controller), the CI
 * identity bound to exactly `canary render --rbac` through a real ServiceAccount token, backends in
 * the harness's pods with their EndpointSlices, the built CLI, kubectl, and traffic counted per
 * version through the real data plane.
 */
import {spawnSync} from 'node:child_process'
import {appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {clusterInfo, kubeconfigText, renderRbac, type ClusterInfo} from '../../scripts/cluster/cluster.js'
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

/** `kubectl get -o json` of one object, or undefined when it does not exist. */
export function kubectlGet(namespace: string, resource: string, name: string): KubeJson | undefined {
  const result = spawnSync(cluster.binaries.kubectl, ['--kubeconfig', cluster.adminKubeconfig, '-n', namespace, 'get', resource, name, '-o', 'json', '--ignore-not-found'], {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`kubectl get ${resource} ${name}: ${result.stderr}`)
  return result.stdout.trim() === '' ? undefined : (JSON.parse(result.stdout) as KubeJson)
}

let namespaceCounter = 0

/** A release in a fresh namespace, with its spec file, CI kubeconfig and the pods it may use. */
export interface ClusterRelease {
  readonly namespace: string
  readonly host: string
  readonly dir: string
  readonly ciKubeconfig: string
  /** The built CLI as the CI identity: `canary ARGS --target kubernetes --kubeconfig <ci>`. */
  canary(args: readonly string[]): Promise<CliResult>
  /** Backends started for this release (stopped by `dispose`). */
  readonly processes: PodProcess[]
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
    `  analysis: {interval: 5s, minRequests: 20, progressDeadline: 30s, maxFalsePassRate: 0.2, tolerance: {errorRate: {points: 5}, latency: {points: 20}}${router === 'proxy' ? '' : `, prometheus: {url: '${cluster.prometheusUrl}'${queries}${analysis}}`}}`,
    ...extraSpec,
    '',
  ].join('\n')
}

/**
 * A fresh namespace with the release's spec, `canary render --rbac` applied by the administrator,
 * and a kubeconfig holding a token the API server issued for the rendered ServiceAccount.
 */
export function aClusterRelease(router: string, options: {extraSpec?: readonly string[]; analysis?: string; specText?: (namespace: string) => string} = {}): ClusterRelease {
  const namespace = `t${process.pid % 10_000}-${++namespaceCounter}-${router}`
  kubectl(['create', 'namespace', namespace])
  const dir = mkdtempSync(join(tmpdir(), 'canary-cluster-'))
  const spec = options.specText?.(namespace) ?? releaseSpec(namespace, router, options.extraSpec, options.analysis)
  writeFileSync(join(dir, 'canary.yaml'), spec)
  kubectl(['apply', '--server-side', '--field-manager=cluster-admin', '-f', '-'], renderRbac(spec))
  const token = kubectl(['-n', namespace, 'create', 'token', 'canary', '--duration=2h']).trim()
  const ciKubeconfig = join(dir, 'ci.kubeconfig')
  writeFileSync(ciKubeconfig, kubeconfigText(cluster.apiServer, cluster.caFile, 'canary-ci', token, namespace), {mode: 0o600})
  const processes: PodProcess[] = []
  return {
    namespace, host: `${namespace}.cluster.test`, dir, ciKubeconfig, processes,
    canary: (args) => runCanary([...args, '--target', 'kubernetes', '--kubeconfig', ciKubeconfig], dir, {KUBECONFIG: ''}),
    async dispose() {
      await Promise.all(processes.map((p) => p.stop()))
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

/** The pods tests may use (pod 0 is the harness's smoke test's). */
export const pods: readonly Pod[] = cluster.pods.slice(1)

/**
 * Starts the backend `name` in `pod` and publishes it as the endpoint of Service `service`: an
 * EndpointSlice for Traefik, and a hosts entry `<service>.<ns>.svc.cluster.local` in every pod (the
 * cluster DNS stand-in; `ip netns exec` mounts /etc/netns/<netns>/hosts over /etc/hosts).
 */
export async function serve(release: ClusterRelease, service: string, pod: Pod, name: string, options: {errorPercent?: number; port?: number} = {}): Promise<PodProcess> {
  const process = await startBackend(pod, name, options)
  release.processes.push(process)
  kubectl(['apply', '--server-side', '--field-manager=cluster-endpoints', '-f', '-'], endpointSlice(release.namespace, service, [pod.ip], options.port ?? 8080))
  addHostsEntry(`${service}.${release.namespace}.svc.cluster.local ${service}.${release.namespace}.svc`, pod.ip)
  return process
}

/** Adds `ip names` to every pod's hosts file (written in place: `ip netns exec` bind-mounts it). */
export function addHostsEntry(names: string, ip: string): void {
  for (const pod of cluster.pods) {
    const dir = join('/etc/netns', pod.netns)
    mkdirSync(dir, {recursive: true})
    appendFileSync(join(dir, 'hosts'), `${ip} ${names}\n`)
  }
}

const keepAlive = new http.Agent({keepAlive: true, maxSockets: 8})

/** `count` requests to `url` with `headers` (Host picks the route); answers counted by version (`x-version`) and status. */
export async function sample(url: string, headers: Readonly<Record<string, string>>, count: number): Promise<{versions: Record<string, number>; statuses: Record<number, number>}> {
  const versions: Record<string, number> = {}
  const statuses: Record<number, number> = {}
  // Eight at a time: Traefik's WRR picks in arrival order, so the split is exact either way.
  let sent = 0
  const worker = async () => {
    while (sent < count) {
      sent++
      const response = await getThrough(url, headers, keepAlive)
      const version = String(response.headers['x-version'] ?? `none:${response.status}`)
      versions[version] = (versions[version] ?? 0) + 1
      statuses[response.status] = (statuses[response.status] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({length: 8}, worker))
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

/** Steady traffic (about 100 requests a second) while a command judges metrics; `stop` returns the statuses seen. */
export function steadyTraffic(url: string, headers: Readonly<Record<string, string>>): {stop: () => Promise<Record<number, number>>} {
  const statuses: Record<number, number> = {}
  let running = true
  const worker = async () => {
    while (running) {
      const response = await getThrough(url, headers, keepAlive).catch(() => ({status: 0}))
      statuses[response.status] = (statuses[response.status] ?? 0) + 1
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const workers = Promise.all([worker(), worker()])
  return {
    async stop() {
      running = false
      await workers
      return statuses
    },
  }
}
