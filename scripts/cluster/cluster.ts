/**
 * `npm run cluster:up` / `npm run cluster:down`: a real control plane (etcd + kube-apiserver with
 * token authentication and RBAC) and a real Traefik on this machine, for the cluster suite and for
 * developers. Application "pods" are network namespaces joined to one bridge, because the API
 * server refuses EndpointSlices that point at 127.0.0.0/8; the API server listens on the bridge's
 * address so those pods (e.g. canary's in-cluster proxy) reach it too. Ports are free ports, so a
 * developer's cluster and CI's do not collide; everything started is recorded in the run folder's
 * state.json, which `down` reads to remove it all.
 *
 *   tsx scripts/cluster/cluster.ts up|down|build|env
 */
import {execFile, spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {promisify} from 'node:util'

import {Agent, fetch} from 'undici'

import {checkPrerequisites, crdFiles, ensureBinaries, MissingPrerequisite, REPO, traefikRbacFiles, type Binaries} from './toolchain.js'
import {VERSIONS} from './versions.js'

/** How many application "pods" (network namespaces) the harness provides: the cluster suite leases
 * them to concurrent tests (two or three each; test/cluster/fixture.ts). */
const POD_COUNT = 16
/** The namespace the harness's own CI kubeconfig is bound to (through `canary render --rbac`). */
export const CI_NAMESPACE = 'shop'

const execFileAsync = promisify(execFile)

/** What a running cluster offers; written to `<run>/cluster.json` for the suite. */
export interface ClusterInfo {
  readonly id: string
  readonly runDir: string
  readonly apiServer: string
  readonly caFile: string
  readonly adminKubeconfig: string
  readonly adminToken: string
  /** Bound to exactly `canary render --rbac` of the harness release in namespace `shop`. */
  readonly ciKubeconfig: string
  readonly traefikUrl: string
  /** Traefik's API, /ping and /metrics. */
  readonly traefikAdminUrl: string
  /** Traefik's file provider reads every file in this folder. */
  readonly traefikFileDir: string
  /** Traefik's web entry point port (the Gateway's listener port). */
  readonly traefikPort: number
  readonly prometheusUrl: string
  readonly etcdUrl: string
  readonly pods: readonly {readonly netns: string; readonly ip: string}[]
  readonly auditLog: string
  readonly binaries: Binaries
  readonly versions: typeof VERSIONS
}

/** What `down` needs to undo `up`, written as soon as each piece exists. */
interface RunState {
  id: string
  bridge?: string
  netns: string[]
  veths: string[]
  processes: Record<string, number>
  /** How each process was started, so a fault test can start a stopped one again (restartApiServer). */
  commands?: Record<string, {command: string; args: readonly string[]}>
}

export function runDir(): string {
  return process.env.CANARY_CLUSTER_RUN ?? join(REPO, '.cache/cluster-run')
}

const statePath = () => join(runDir(), 'state.json')

function sh(command: string, args: readonly string[], options: {input?: string; allowFail?: boolean; env?: NodeJS.ProcessEnv} = {}): string {
  const result = spawnSync(command, args, {encoding: 'utf8', input: options.input, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024})
  if (result.error !== undefined) throw new MissingPrerequisite(`${command}: ${result.error.message}`)
  if (result.status !== 0 && options.allowFail !== true) throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}): ${result.stderr.trim()}`)
  return result.stdout
}

/** A port nobody listens on right now, on `host`. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

/** Whether a process of this id exists (signal 0 checks without touching it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Starts a long-running program in its own process group, logging to `<run>/logs/<name>.log`. */
function startProcess(state: RunState, name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  mkdirSync(join(runDir(), 'logs'), {recursive: true})
  const log = openSync(join(runDir(), 'logs', `${name}.log`), 'a')
  const child = spawn(command, args, {detached: true, stdio: ['ignore', log, log], env})
  closeSync(log)
  child.unref()
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  state.processes[name] = child.pid
  state.commands = {...state.commands, [name]: {command, args}}
  saveState(state)
  return child.pid
}

function saveState(state: RunState): void {
  writeFileSync(statePath(), `${JSON.stringify(state, null, 2)}\n`)
}

/** Polls `check` until it returns true; the error names what did not become ready and its log. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, state?: RunState, processName?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (processName !== undefined && state !== undefined && !isAlive(state.processes[processName]!)) {
      throw new Error(`${what}: the process exited; see ${join(runDir(), 'logs', `${processName}.log`)}:\n${tail(processName)}`)
    }
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs / 1000} s${processName === undefined ? '' : `; see ${join(runDir(), 'logs', `${processName}.log`)}:\n${tail(processName)}`}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function tail(processName: string): string {
  const file = join(runDir(), 'logs', `${processName}.log`)
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : ''
}

/** A private /24 in 10.213.0.0/16 that no interface on this machine uses yet. */
function freeSubnet(): string {
  const used = sh('ip', ['-4', '-o', 'addr'])
  for (let attempt = 0; attempt < 256; attempt++) {
    const third = randomBytes(1)[0]!
    if (!used.includes(`10.213.${third}.`)) return `10.213.${third}`
  }
  throw new Error('no free 10.213.X.0/24 subnet for the pod network')
}

/**
 * One bridge with the host at .1 and a network namespace per pod at .2, .3…, each joined by a veth
 * pair. Pods reach each other over the bridge and the host (API server, Traefik) at .1.
 */
function createPodNetwork(state: RunState, subnet: string): {hostIp: string; pods: {netns: string; ip: string}[]} {
  const bridge = `cnry${state.id}`
  sh('ip', ['link', 'add', bridge, 'type', 'bridge'])
  state.bridge = bridge
  saveState(state)
  sh('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', bridge])
  sh('ip', ['link', 'set', bridge, 'up'])
  const pods: {netns: string; ip: string}[] = []
  for (let i = 0; i < POD_COUNT; i++) {
    const netns = `cnry${state.id}-pod${i}`
    const veth = `cnry${state.id}v${i}`
    const ip = `${subnet}.${i + 2}`
    sh('ip', ['netns', 'add', netns])
    state.netns.push(netns)
    sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns])
    state.veths.push(veth)
    saveState(state)
    sh('ip', ['link', 'set', veth, 'master', bridge])
    sh('ip', ['link', 'set', veth, 'up'])
    sh('ip', ['-n', netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    sh('ip', ['-n', netns, 'link', 'set', 'eth0', 'up'])
    sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up'])
    sh('ip', ['-n', netns, 'route', 'add', 'default', 'via', `${subnet}.1`])
    pods.push({netns, ip})
  }
  return {hostIp: `${subnet}.1`, pods}
}

/** A CA, the API server's serving certificate and the service-account key pair, with openssl. */
function createCertificates(dir: string, hostIp: string): void {
  const o = (args: readonly string[]) => sh('openssl', args)
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '30', '-subj', '/CN=canary-cluster-ca'])
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'apiserver.key'), '-out', join(dir, 'apiserver.csr'), '-subj', '/CN=kube-apiserver'])
  writeFileSync(join(dir, 'apiserver.ext'), `subjectAltName=IP:${hostIp},IP:127.0.0.1,DNS:localhost,IP:10.0.0.1\nextendedKeyUsage=serverAuth\n`)
  o(['x509', '-req', '-in', join(dir, 'apiserver.csr'), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '30', '-extfile', join(dir, 'apiserver.ext'), '-out', join(dir, 'apiserver.crt')])
  o(['genrsa', '-out', join(dir, 'sa.key'), '2048'])
  o(['rsa', '-in', join(dir, 'sa.key'), '-pubout', '-out', join(dir, 'sa.pub')])
}

/** A kubeconfig for one token. */
export function kubeconfigText(server: string, caFile: string, user: string, token: string, namespace: string): string {
  return [
    'apiVersion: v1', 'kind: Config',
    'clusters:', `- name: canary-cluster`, `  cluster: {server: '${server}', certificate-authority: '${caFile}'}`,
    'users:', `- name: ${user}`, `  user: {token: '${token}'}`,
    'contexts:', `- name: ${user}`, `  context: {cluster: canary-cluster, user: ${user}, namespace: ${namespace}}`,
    `current-context: ${user}`, '',
  ].join('\n')
}

/** Logs every request's metadata (verb, resource, user): the benchmark counts API calls from it. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
`

/** The objects every cluster has beside the CRDs: Traefik's access, classes, the Gateway, namespace shop. */
function clusterObjects(traefikPort: number): string {
  const bind = (role: string) => `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: canary-harness-traefik-${role}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${role}}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: traefik}]`
  return [
    // Traefik's RBAC files bind their ClusterRoles to service accounts; the harness's Traefik runs as user `traefik`.
    bind('traefik-ingress-controller'), bind('gateway-role'), bind('traefik-ingress-nginx-controller'),
    `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}`,
    `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik}
spec: {controller: traefik.io/ingress-controller}`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik}
spec: {controllerName: traefik.io/gateway-controller}`,
    `apiVersion: v1
kind: Namespace
metadata: {name: ${CI_NAMESPACE}}`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: ${CI_NAMESPACE}}
spec:
  gatewayClassName: traefik
  listeners:
  - {name: web, protocol: HTTP, port: ${traefikPort}, allowedRoutes: {namespaces: {from: All}}}`,
  ].join('\n---\n')
}

/** The release whose `canary render --rbac` output the harness's CI user is bound to. */
const HARNESS_RELEASE = `apiVersion: canary.dev/v1alpha1
kind: Release
metadata: {name: web, namespace: ${CI_NAMESPACE}}
spec:
  image: ghcr.io/acme/web:v1
  port: 8080
  ingress: {host: web.example.com, router: traefik}
  steps: [10, 50, 100]
  target: kubernetes
  analysis: {interval: 1s, prometheus: {url: 'http://127.0.0.1:9'}}
`

/** `canary render --rbac` for a spec, with the built CLI. */
export function renderRbac(specText: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'canary-rbac-'))
  try {
    writeFileSync(join(dir, 'canary.yaml'), specText)
    const result = spawnSync(process.execPath, [join(REPO, 'bin/run.js'), 'render', '--rbac'], {cwd: dir, encoding: 'utf8'})
    if (result.status !== 0) throw new Error(`canary render --rbac failed: ${result.stderr}`)
    return result.stdout
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** `canary render --rbac` without blocking the caller (the cluster suite's concurrent tests share a process). */
export async function renderRbacAsync(specText: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-rbac-'))
  try {
    await writeFile(join(dir, 'canary.yaml'), specText)
    const {stdout} = await execFileAsync(process.execPath, [join(REPO, 'bin/run.js'), 'render', '--rbac'], {cwd: dir, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024}).catch((error: {stderr?: string; message: string}) => {
      throw new Error(`canary render --rbac failed: ${error.stderr ?? error.message}`)
    })
    return stdout
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

function ensureCliBuilt(): void {
  if (existsSync(join(REPO, 'dist/cli/canary.cjs'))) return
  console.log('cluster: building the CLI (npm run build)…')
  sh('npm', ['run', '--silent', 'build'])
}

export async function up(): Promise<ClusterInfo> {
  const started = performance.now()
  checkPrerequisites()
  if (existsSync(statePath())) {
    const previous = JSON.parse(readFileSync(statePath(), 'utf8')) as RunState
    if (Object.values(previous.processes).some(isAlive)) {
      throw new Error(`a cluster is already up (${runDir()}); run \`npm run cluster:down\` first`)
    }
    down()
  }
  ensureCliBuilt()
  const {binaries} = ensureBinaries()
  const crds = crdFiles()
  const traefikRbac = traefikRbacFiles()
  const buildDone = performance.now()

  const dir = runDir()
  mkdirSync(dir, {recursive: true})
  const state: RunState = {id: randomBytes(2).toString('hex'), netns: [], veths: [], processes: {}}
  saveState(state)
  // Seconds per phase, printed with "ready" so a slow start says where the time went.
  const phases: string[] = []
  let phaseStart = performance.now()
  const phase = (name: string) => {
    phases.push(`${name} ${((performance.now() - phaseStart) / 1000).toFixed(1)}`)
    phaseStart = performance.now()
  }
  try {
    const {hostIp, pods} = createPodNetwork(state, freeSubnet())
    const pki = join(dir, 'pki')
    mkdirSync(pki, {recursive: true})
    createCertificates(pki, hostIp)
    phase('network+certs')
    const caFile = join(pki, 'ca.crt')
    const token = () => randomBytes(24).toString('hex')
    const tokens = {admin: token(), traefik: token(), ci: token()}
    const ciUser = `system:serviceaccount:${CI_NAMESPACE}:canary`
    writeFileSync(join(pki, 'tokens.csv'), [
      `${tokens.admin},admin,uid-admin,"system:masters"`,
      `${tokens.traefik},traefik,uid-traefik`,
      `${tokens.ci},${ciUser},uid-ci,"system:serviceaccounts,system:serviceaccounts:${CI_NAMESPACE}"`,
      '',
    ].join('\n'), {mode: 0o600})
    writeFileSync(join(pki, 'traefik.token'), tokens.traefik, {mode: 0o600})

    const etcdPort = await freePort('127.0.0.1')
    const etcdPeerPort = await freePort('127.0.0.1')
    const etcdUrl = `http://127.0.0.1:${etcdPort}`
    startProcess(state, 'etcd', binaries.etcd, [
      '--name', 'canary', '--data-dir', join(dir, 'etcd'), '--unsafe-no-fsync',
      '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeerPort}`,
      '--initial-cluster', `canary=http://127.0.0.1:${etcdPeerPort}`,
    ])
    await waitFor('etcd', 30_000, async () => (await fetch(`${etcdUrl}/health`)).ok, state, 'etcd')
    phase('etcd')

    const apiPort = await freePort(hostIp)
    const apiServer = `https://${hostIp}:${apiPort}`
    writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY)
    const auditLog = join(dir, 'audit.log')
    startProcess(state, 'kube-apiserver', binaries.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`, `--bind-address=${hostIp}`, `--advertise-address=${hostIp}`, `--secure-port=${apiPort}`,
      // The `kubernetes` Service's endpoint reconciler would publish the advertise address; nothing needs it here.
      '--endpoint-reconciler-type=none', '--service-cluster-ip-range=10.0.0.0/24',
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`, `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--service-account-issuer=${apiServer}`, `--service-account-key-file=${join(pki, 'sa.pub')}`, `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`, '--authorization-mode=RBAC',
      // No controller creates a namespace's default ServiceAccount.
      '--disable-admission-plugins=ServiceAccount', '--profiling=false',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`,
    ])
    const apiAgent = new Agent({connect: {ca: readFileSync(caFile)}})
    const adminHeaders = {authorization: `Bearer ${tokens.admin}`}
    await waitFor('kube-apiserver', 90_000, async () => (await fetch(`${apiServer}/readyz`, {dispatcher: apiAgent, headers: adminHeaders})).ok, state, 'kube-apiserver')
    phase('kube-apiserver')

    const adminKubeconfig = join(dir, 'admin.kubeconfig')
    writeFileSync(adminKubeconfig, kubeconfigText(apiServer, caFile, 'admin', tokens.admin, 'default'), {mode: 0o600})
    const ciKubeconfig = join(dir, 'ci.kubeconfig')
    writeFileSync(ciKubeconfig, kubeconfigText(apiServer, caFile, 'canary-ci', tokens.ci, CI_NAMESPACE), {mode: 0o600})
    const kubectl = (args: readonly string[], input?: string) => sh(binaries.kubectl, ['--kubeconfig', adminKubeconfig, ...args], {input})

    // CRDs are large: server-side apply has no last-applied annotation to overflow.
    // Few kubectl runs (each pays its start and discovery): the CRDs with Traefik's RBAC, then what needs the CRDs.
    kubectl(['apply', '--server-side', '--field-manager=canary-harness', ...[...crds, ...traefikRbac].flatMap((f) => ['-f', f])])
    kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all'])
    const traefikPort = await freePort('127.0.0.1')
    kubectl(['apply', '--server-side', '--field-manager=canary-harness', '-f', '-'], `${clusterObjects(traefikPort)}\n---\n${renderRbac(HARNESS_RELEASE)}`)
    phase('CRDs+RBAC')

    startProcess(state, 'stand-in-controllers', process.execPath, ['--import', 'tsx', join(REPO, 'scripts/cluster/stand-in-controllers.ts')], {
      ...process.env, CANARY_CLUSTER_API: apiServer, CANARY_CLUSTER_CA: caFile, CANARY_CLUSTER_TOKEN: tokens.admin,
    })

    const traefikAdminPort = await freePort('127.0.0.1')
    const traefikFileDir = join(dir, 'traefik-file')
    mkdirSync(traefikFileDir, {recursive: true})
    const provider = (name: string) => [`--providers.${name}.endpoint=${apiServer}`, `--providers.${name}.token=${join(pki, 'traefik.token')}`, `--providers.${name}.certAuthFilePath=${caFile}`]
    // KUBECONFIG or KUBERNETES_SERVICE_* in Traefik's environment would win over endpoint/token.
    const traefikEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'KUBECONFIG' && !k.startsWith('KUBERNETES_SERVICE_')))
    startProcess(state, 'traefik', binaries.traefik, [
      '--global.checkNewVersion=false', '--global.sendAnonymousUsage=false', '--log.level=INFO', '--log.noColor=true',
      `--entryPoints.web.address=127.0.0.1:${traefikPort}`, `--entryPoints.traefik.address=127.0.0.1:${traefikAdminPort}`,
      // The default 10 s grace for open keep-alive connections would make every `down` wait for it.
      '--entryPoints.web.transport.lifeCycle.graceTimeOut=1s', '--entryPoints.traefik.transport.lifeCycle.graceTimeOut=1s',
      '--api.insecure=true', '--ping=true', '--metrics.prometheus=true', '--metrics.prometheus.addServicesLabels=true', '--metrics.prometheus.addRoutersLabels=true',
      '--providers.providersThrottleDuration=100ms',
      ...provider('kubernetesCRD'), '--providers.kubernetesCRD.allowCrossNamespace=true',
      ...provider('kubernetesIngress'),
      ...provider('kubernetesGateway'), '--providers.kubernetesGateway.experimentalChannel=true',
      ...provider('kubernetesIngressNGINX'),
      `--providers.file.directory=${traefikFileDir}`, '--providers.file.watch=true',
    ], traefikEnv)
    const traefikAdminUrl = `http://127.0.0.1:${traefikAdminPort}`
    await waitFor('traefik', 30_000, async () => (await fetch(`${traefikAdminUrl}/ping`)).ok, state, 'traefik')

    const prometheusPort = await freePort('127.0.0.1')
    const prometheusUrl = `http://127.0.0.1:${prometheusPort}`
    writeFileSync(join(dir, 'prometheus.yml'), `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: traefik
  static_configs: [{targets: ['127.0.0.1:${traefikAdminPort}']}]
`)
    startProcess(state, 'prometheus', 'prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prometheus')}`, `--web.listen-address=127.0.0.1:${prometheusPort}`,
    ])
    await waitFor('prometheus', 30_000, async () => (await fetch(`${prometheusUrl}/-/ready`)).ok, state, 'prometheus')
    phase('traefik+prometheus')

    const info: ClusterInfo = {
      id: state.id, runDir: dir, apiServer, caFile, adminKubeconfig, adminToken: tokens.admin, ciKubeconfig,
      traefikUrl: `http://127.0.0.1:${traefikPort}`, traefikAdminUrl, traefikFileDir, traefikPort, prometheusUrl, etcdUrl,
      pods, auditLog, binaries, versions: VERSIONS,
    }
    writeFileSync(join(dir, 'cluster.json'), `${JSON.stringify(info, null, 2)}\n`)
    const {smokeTest} = await import('./smoke.js')
    await smokeTest(info)
    phase('smoke request')
    const done = performance.now()
    console.log(`cluster: ready in ${((done - buildDone) / 1000).toFixed(1)} s (${phases.join(', ')}; binaries: ${((buildDone - started) / 1000).toFixed(1)} s)`)
    rmSync(`${dir}-failed-logs`, {recursive: true, force: true})
    return info
  } catch (error) {
    // Keep the logs of a failed start for the reader; everything else goes.
    const kept = `${dir}-failed-logs`
    rmSync(kept, {recursive: true, force: true})
    if (existsSync(join(dir, 'logs'))) renameSync(join(dir, 'logs'), kept)
    console.error(`cluster: start failed; removing what was started (logs kept in ${kept})`)
    down()
    throw error
  }
}

/** Removes every process, network namespace, veth, bridge and file `up` created. Idempotent. */
export function down(): void {
  if (!existsSync(statePath())) {
    rmSync(runDir(), {recursive: true, force: true})
    return
  }
  const state = JSON.parse(readFileSync(statePath(), 'utf8')) as RunState
  const pids = Object.values(state.processes)
  // Processes the suite started inside the pods die with their namespaces' pids.
  for (const netns of state.netns) {
    for (const pid of sh('ip', ['netns', 'pids', netns], {allowFail: true}).split('\n').filter(Boolean)) pids.push(Number(pid))
  }
  const signalAll = (signal: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(-pid, signal)
      } catch {
        try {
          process.kill(pid, signal)
        } catch {
          // already gone
        }
      }
    }
  }
  signalAll('SIGTERM')
  // A short grace: everything here is disposable, and a slow stop would make every `down` slow.
  const deadline = Date.now() + 3_000
  while (pids.some(isAlive) && Date.now() < deadline) spawnSync('sleep', ['0.1'])
  signalAll('SIGKILL')
  for (const netns of state.netns) {
    sh('ip', ['netns', 'del', netns], {allowFail: true})
    // The pods' hosts files (the suite's cluster-DNS stand-in), mounted by `ip netns exec`.
    rmSync(join('/etc/netns', netns), {recursive: true, force: true})
  }
  for (const veth of state.veths) sh('ip', ['link', 'del', veth], {allowFail: true})
  if (state.bridge !== undefined) sh('ip', ['link', 'del', state.bridge], {allowFail: true})
  rmSync(runDir(), {recursive: true, force: true})
}

/** True when a cluster from this run folder is up: its details written and every process alive. */
export function isUp(): boolean {
  if (!existsSync(statePath()) || !existsSync(join(runDir(), 'cluster.json'))) return false
  const state = JSON.parse(readFileSync(statePath(), 'utf8')) as RunState
  return Object.values(state.processes).every(isAlive)
}

/** The running cluster's details, or an error saying to start it. */
export function clusterInfo(): ClusterInfo {
  const file = join(runDir(), 'cluster.json')
  if (!existsSync(file)) throw new Error(`no cluster is up (${file} is missing): run \`npm run cluster:up\``)
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterInfo
}

/**
 * Stops kube-apiserver (SIGTERM, then SIGKILL after 10 s) and leaves etcd and everything else
 * running: the fault tests' "API server down" while the stored objects survive.
 */
export async function stopApiServer(): Promise<void> {
  const state = JSON.parse(readFileSync(statePath(), 'utf8')) as RunState
  const pid = state.processes['kube-apiserver']
  if (pid === undefined || !isAlive(pid)) return
  process.kill(-pid, 'SIGTERM')
  const deadline = Date.now() + 10_000
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  if (isAlive(pid)) process.kill(-pid, 'SIGKILL')
  while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 50))
}

/** Starts kube-apiserver again with its original command line (same port, same etcd) and waits until /readyz answers. */
export async function restartApiServer(): Promise<void> {
  const state = JSON.parse(readFileSync(statePath(), 'utf8')) as RunState
  const previous = state.processes['kube-apiserver']
  if (previous !== undefined && isAlive(previous)) return
  const started = state.commands?.['kube-apiserver']
  if (started === undefined) throw new Error(`kube-apiserver's command line is not recorded in ${statePath()}: restart the cluster (npm run cluster:down && npm run cluster:up)`)
  startProcess(state, 'kube-apiserver', started.command, started.args)
  const info = clusterInfo()
  const agent = new Agent({connect: {ca: readFileSync(info.caFile)}})
  await waitFor('kube-apiserver (restarted)', 90_000, async () => (await fetch(`${info.apiServer}/readyz`, {dispatcher: agent, headers: {authorization: `Bearer ${info.adminToken}`}})).ok, state, 'kube-apiserver')
}

async function main(command: string | undefined): Promise<void> {
  switch (command) {
    case 'up': {
      const info = await up()
      console.log(`admin kubeconfig:  ${info.adminKubeconfig}`)
      console.log(`CI kubeconfig:     ${info.ciKubeconfig}   (exactly \`canary render --rbac\` in namespace ${CI_NAMESPACE})`)
      console.log(`Traefik entry URL: ${info.traefikUrl}`)
      console.log(`Traefik API:       ${info.traefikAdminUrl}/api/rawdata`)
      console.log(`Prometheus:        ${info.prometheusUrl}`)
      console.log(`pods (netns/IP):   ${info.pods.map((p) => `${p.netns}=${p.ip}`).join(' ')}`)
      console.log(`details:           ${join(info.runDir, 'cluster.json')}; stop with \`npm run cluster:down\``)
      return
    }
    case 'down':
      down()
      console.log('cluster: down')
      return
    case 'build': {
      checkPrerequisites()
      const {binaries, seconds} = ensureBinaries()
      crdFiles()
      for (const [name, path] of Object.entries(binaries)) console.log(`${name}: ${path} (${seconds[name as keyof Binaries]} s)`)
      return
    }
    case 'env':
      console.log(JSON.stringify(clusterInfo(), null, 2))
      return
    default:
      throw new Error('usage: tsx scripts/cluster/cluster.ts up|down|build|env')
  }
}

if (process.argv[1] !== undefined && import.meta.filename === resolve(process.argv[1])) {
  main(process.argv[2]).catch((error: unknown) => {
    console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  })
}
