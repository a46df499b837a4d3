/**
 * `npm run bench:cluster`: figures of the real cluster harness and of canary against it, taken on
 * whatever machine runs it (a private cluster in a temp run folder, so one already up is untouched):
 *  1. time to obtain each binary (0 s when cached; `--cold` builds into empty Go caches);
 *  2. warm harness start, from nothing running to ready (goal ≤ 30 s);
 *  3. wall time of `canary step --weight N --force` against the real API server (goal median ≤ 400 ms),
 *     with the CPU time it used (user + system, from /usr/bin/time), which a loaded machine inflates less;
 *  4. API requests per `canary status` (one look), per step and per step that changes nothing,
 *     counted from the API server's audit log (goal: zero writes when nothing changes);
 *  5. API requests and writes of `canary run` over BENCH_RUN_SECONDS (default 30) with no traffic:
 *     per second (one tick), per look (every 5 s) and writes per minute;
 *  6. with `--suite`, the cluster suite's wall time on that cluster (goal ≤ 6 min warm).
 * The machine's load average is printed beside the figures: other work on it inflates wall times.
 * `--smoke`: only the pinned versions and which binaries are cached (seconds, no cluster).
 */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {kubeconfigText, renderRbac} from '../scripts/cluster/cluster.js'
import {cacheDir, REPO} from '../scripts/cluster/toolchain.js'
import {VERSIONS} from '../scripts/cluster/versions.js'
import {canary, CLI} from '../test/helpers/lifecycle.js'

const args = process.argv.slice(2)
const STEP_RUNS = Number(process.env.BENCH_STEP_RUNS ?? 15)
const RUN_SECONDS = Number(process.env.BENCH_RUN_SECONDS ?? 30)

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

function load(): string {
  return `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`
}

/** One CLI run under /usr/bin/time: exit code, wall ms, CPU ms (user + system). */
function timedCli(args: readonly string[], cwd: string): Promise<{code: number | null; wallMs: number; cpuMs: number; output: string}> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn('/usr/bin/time', ['-f', 'CPU %U %S', process.execPath, CLI, ...args], {cwd, env: {...process.env, NO_COLOR: '1', KUBECONFIG: ''}, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const wallMs = performance.now() - t0
      const cpu = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(output)
      resolve({code, wallMs, cpuMs: cpu === null ? Number.NaN : (Number(cpu[1]) + Number(cpu[2])) * 1000, output})
    })
  })
}

function smoke(): void {
  console.log('smoke run (--smoke): versions and the binary cache only, no cluster')
  console.log(`pinned: ${Object.entries(VERSIONS).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  const cached = {
    'kube-apiserver': join(cacheDir(), 'bin', `kube-apiserver-${VERSIONS.kubernetes}`),
    etcd: join(cacheDir(), 'bin', `etcd-${VERSIONS.etcd}`),
    'traefik + kubectl': join(cacheDir(), `venv-traefik-${VERSIONS.traefik}-kubectl-${VERSIONS.kubectl}`, '.complete'),
  }
  for (const [name, path] of Object.entries(cached)) console.log(`${name}: ${existsSync(path) ? 'cached' : 'not built yet'} (${path})`)
}

interface AuditEvent {
  stage: string
  verb: string
  user: {username: string}
  requestURI: string
  objectRef?: {resource?: string; subresource?: string; name?: string}
}

/** The audit events of `user` logged while `action` ran. */
async function audited(auditLog: string, user: string, action: () => Promise<unknown>): Promise<AuditEvent[]> {
  const before = readFileSync(auditLog, 'utf8').length
  await action()
  return readFileSync(auditLog, 'utf8').slice(before).split('\n').filter(Boolean)
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === 'ResponseComplete' && e.user.username === user)
}

function describeCalls(events: readonly AuditEvent[]): string {
  const writes = events.filter((e) => ['create', 'update', 'patch', 'delete'].includes(e.verb))
  const detail = events.map((e) => `${e.verb} ${e.objectRef?.resource ?? e.requestURI}${e.objectRef?.subresource === undefined ? '' : `/${e.objectRef.subresource}`}`)
  return `${events.length} requests, ${writes.length} writes [${detail.join(', ')}]`
}

async function main(): Promise<void> {
  if (args.includes('--smoke')) return smoke()
  const scratch = mkdtempSync(join(tmpdir(), 'canary-bench-cluster-'))
  if (args.includes('--cold')) {
    process.env.CANARY_CLUSTER_CACHE = join(scratch, 'cache')
    process.env.GOCACHE = join(scratch, 'gocache')
    process.env.GOMODCACHE = join(scratch, 'gomodcache')
  }
  process.env.CANARY_CLUSTER_RUN = join(scratch, 'run')
  const {ensureBinaries} = await import('../scripts/cluster/toolchain.js')
  const {seconds} = ensureBinaries()
  console.log(`binaries (s, 0 = cached${args.includes('--cold') ? ', cold Go caches' : ''}): ${Object.entries(seconds).map(([k, v]) => `${k} ${v}`).join(', ')}`)

  const {up, down} = await import('../scripts/cluster/cluster.js')
  const t0 = performance.now()
  const info = await up()
  console.log(`warm harness start: ${((performance.now() - t0) / 1000).toFixed(1)} s to ready`)
  try {
    const kubectl = (a: readonly string[], input?: string) => {
      const r = spawnSync(info.binaries.kubectl, ['--kubeconfig', info.adminKubeconfig, ...a], {input, encoding: 'utf8'})
      if (r.status !== 0) throw new Error(`kubectl ${a.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    const namespace = 'bench'
    const dir = join(scratch, 'release')
    kubectl(['create', 'namespace', namespace])
    const spec = `apiVersion: canary.dev/v1alpha1
kind: Release
metadata: {name: web, namespace: ${namespace}}
spec:
  image: ghcr.io/acme/web:v1
  port: 8080
  ingress: {host: bench.cluster.test, router: traefik}
  steps: [10, 50, 100]
  target: kubernetes
  analysis: {interval: 5s, minRequests: 1, prometheus: {url: '${info.prometheusUrl}'}}
`
    spawnSync('mkdir', ['-p', dir])
    writeFileSync(join(dir, 'canary.yaml'), spec)
    kubectl(['apply', '--server-side', '--field-manager=bench', '-f', '-'], renderRbac(spec))
    const token = kubectl(['-n', namespace, 'create', 'token', 'canary']).trim()
    const kubeconfig = join(dir, 'ci.kubeconfig')
    writeFileSync(kubeconfig, kubeconfigText(info.apiServer, info.caFile, 'ci', token, namespace))
    const cli = (a: readonly string[]) => canary([...a, '--target', 'kubernetes', '--kubeconfig', kubeconfig], dir, {KUBECONFIG: ''})
    const start = await cli(['start', '--image', 'v2', '--json'])
    if (start.code !== 0) throw new Error(`canary start: ${start.stdout}${start.stderr}`)

    const walls: number[] = []
    const cpus: number[] = []
    const loadBefore = load()
    for (let run = 0; run < STEP_RUNS; run++) {
      const step = await timedCli(['step', '--weight', String(run % 2 === 0 ? 20 : 10), '--force', '--json', '--target', 'kubernetes', '--kubeconfig', kubeconfig], dir)
      if (step.code !== 0) throw new Error(`canary step: ${step.output}`)
      walls.push(step.wallMs)
      cpus.push(step.cpuMs)
    }
    console.log(`canary step --weight N --force against the real API server (${STEP_RUNS} runs): wall median ${quantile(walls, 0.5).toFixed(0)} ms, p95 ${quantile(walls, 0.95).toFixed(0)} ms, min ${Math.min(...walls).toFixed(0)} ms, max ${Math.max(...walls).toFixed(0)} ms; CPU median ${quantile(cpus, 0.5).toFixed(0)} ms (${loadBefore} before, ${load()} after)`)

    const user = `system:serviceaccount:${namespace}:canary`
    const current = STEP_RUNS % 2 === 0 ? 10 : 20
    console.log(`API calls of one \`canary status\` (a look): ${describeCalls(await audited(info.auditLog, user, () => cli(['status', '--json'])))}`)
    console.log(`API calls of one step that changes the weight: ${describeCalls(await audited(info.auditLog, user, () => cli(['step', '--weight', String(current === 10 ? 20 : 10), '--force', '--json'])))}`)
    console.log(`API calls of one step to the weight already set: ${describeCalls(await audited(info.auditLog, user, () => cli(['step', '--weight', String(current === 10 ? 20 : 10), '--force', '--json'])))}`)

    const looksOf = async () => ((await cli(['status', '--json'])).json?.decisions as {event: string}[] | undefined ?? []).filter((d) => d.event === 'analysis').length
    const looksBefore = await looksOf()
    let ranMs = 0
    const runEvents = await audited(info.auditLog, user, async () => {
      const t = performance.now()
      const run = await cli(['run', '--image', 'v2', '--timeout', `${RUN_SECONDS}s`, '--json'])
      ranMs = performance.now() - t
      if (run.code !== 13 && run.code !== 14) throw new Error(`canary run: exit ${run.code}: ${run.stdout}${run.stderr}`)
    })
    const looks = (await looksOf()) - looksBefore
    const runWrites = runEvents.filter((e) => ['create', 'update', 'patch', 'delete'].includes(e.verb)).length
    const minutes = ranMs / 60_000
    console.log(`canary run for ${(ranMs / 1000).toFixed(1)} s without traffic (interval 5 s, ${looks} looks): ${runEvents.length} requests (${(runEvents.length / (ranMs / 1000)).toFixed(1)}/s, ${looks === 0 ? '–' : (runEvents.length / looks).toFixed(1)} per look), ${runWrites} writes (${(runWrites / minutes).toFixed(1)}/min, ${looks === 0 ? '–' : (runWrites / looks).toFixed(2)} per look) (${load()})`)

    if (args.includes('--suite')) {
      const t = performance.now()
      const suite = spawnSync('npx', ['vitest', 'run', '-c', 'vitest.cluster.config.ts'], {cwd: REPO, stdio: 'inherit', env: process.env})
      console.log(`cluster suite: ${((performance.now() - t) / 1000).toFixed(0)} s wall (exit ${suite.status}), on a cluster already up`)
    }
  } finally {
    down()
    rmSync(scratch, {recursive: true, force: true})
  }
}

main().catch((error: unknown) => {
  console.error(`bench:cluster: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
