/**
 * `npm run bench:local`: two figures of the real local setup (built CLI, daemon, proxy,
 * demo app replicas), taken on whatever machine runs it:
 *  1. wall time of `canary step --weight N --force` (target: median ≤ 250 ms);
 *  2. time from the canary turning bad (5 % errors, at a known instant) to the proxy reporting
 *     canary weight 0, in analysis intervals (target: ≤ 2 intervals).
 * Needs `npm run build` first; CANARY_BIN points at another build.
 * `--smoke`: 2 step runs and one rollback with 2 s intervals: every code path in about 20 s, for CI
 * (test/bench/bench-smoke.test.ts). Its figures are not measurements.
 */
import {performance} from 'node:perf_hooks'
import {execFile} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {aLocalRelease, canary, cleanUp, daemonInfo, eventually, traffic} from '../test/helpers/lifecycle.js'

const SMOKE = process.argv.includes('--smoke')
const STEP_RUNS = SMOKE ? 2 : Number(process.env.BENCH_STEP_RUNS ?? 15)
const ROLLBACK_RUNS = SMOKE ? 1 : Number(process.env.BENCH_ROLLBACK_RUNS ?? 3)
const INTERVAL_MS = SMOKE ? 2000 : 10_000
/** When the canary turns bad: late enough for it to be ready and judged healthy at 20 % a few times first. */
const BAD_AFTER_MS = SMOKE ? 10_000 : 25_000

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

/** Wall time of one CLI run, in ms. */
async function timed(args: string[], dir: string, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const t0 = performance.now()
  const result = await canary(args, dir, env)
  const ms = performance.now() - t0
  if (result.code !== 0) throw new Error(`canary ${args.join(' ')} failed (${result.code}): ${result.stderr}`)
  return ms
}

async function stepWallTime(): Promise<void> {
  const {dir, spec} = await aLocalRelease()
  // A fresh V8 code cache, as on a new machine: start and status write theirs, and the first step
  // runs before its own exists.
  const cacheDir = await mkdtemp(join(tmpdir(), 'canary-bench-cache-'))
  const env = {CANARY_CODE_CACHE_DIR: cacheDir}
  try {
    await timed(['start', '--image', 'v2', '-f', spec], dir, env)
    await timed(['status', '-f', spec], dir, env) // warm the spec cache like a CI job's first call
    const weight = (i: number) => String(i % 2 === 0 ? 30 : 20)
    const cold = await timed(['step', '--weight', weight(1), '--force', '-f', spec], dir, env)
    const times: number[] = []
    for (let i = 0; i < STEP_RUNS; i++) times.push(await timed(['step', '--weight', weight(i), '--force', '-f', spec], dir, env))
    const nodeAlone: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      await new Promise((resolve) => execFile(process.execPath, ['-e', ''], resolve))
      nodeAlone.push(performance.now() - t0)
    }
    console.log(`canary step wall time over ${STEP_RUNS} runs: median ${quantile(times, 0.5).toFixed(0)} ms, p90 ${quantile(times, 0.9).toFixed(0)} ms (target median ≤ 250 ms); first step run (before its own code cache exists) ${cold.toFixed(0)} ms; \`node -e ''\` alone ${quantile(nodeAlone, 0.5).toFixed(0)} ms`)
    if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
      // Node reads and parses that CA file at every start, before any of canary's code runs.
      const without: number[] = []
      for (let i = 0; i < STEP_RUNS; i++) without.push(await timed(['step', '--weight', weight(i), '--force', '-f', spec], dir, {...env, NODE_EXTRA_CA_CERTS: undefined}))
      console.log(`  NODE_EXTRA_CA_CERTS is set here (${process.env.NODE_EXTRA_CA_CERTS}); without it: median ${quantile(without, 0.5).toFixed(0)} ms, p90 ${quantile(without, 0.9).toFixed(0)} ms`)
    }
  } finally {
    await cleanUp(dir)
    await rm(cacheDir, {recursive: true, force: true})
  }
}

async function timeToRollback(): Promise<number> {
  // The replicas read DEMO_BAD_FROM_MS when they start, so the instant is fixed up front: late
  // enough for the canary to be ready and judged healthy at 20 % a few times first.
  const badFromMs = Date.now() + BAD_AFTER_MS
  const {dir, spec} = await aLocalRelease({
    env: {DEMO_BAD_IMAGE: 'acme/shop:v2', DEMO_ERROR_PERCENT: '5', DEMO_BAD_FROM_MS: String(badFromMs)},
    steps: '[{setWeight: 20}, {pause: {duration: 10m}}, {setWeight: 100}]',
    analysis: `{interval: ${INTERVAL_MS / 1000}s, minRequests: ${SMOKE ? 20 : 50}, successRate: 99, failureLimit: 1}`,
  })
  try {
    const running = canary(['run', '--image', 'v2', '--timeout', '5m', '-f', spec], dir)
    await eventually(async () => (await daemonInfo(dir)) !== undefined, 30_000)
    const info = await daemonInfo(dir)
    if (info === undefined) throw new Error('daemon did not start')
    const load = traffic(info.proxyUrl, 100)
    const daemon = JSON.parse(await readFile(join(dir, '.canary/shop/daemon.json'), 'utf8')) as {adminUrl: string}
    const token = (await readFile(join(dir, '.canary/shop/admin-token'), 'utf8')).trim()
    const canaryWeight = async () => {
      const state = (await (await fetch(`${daemon.adminUrl}/api/state`, {headers: {authorization: `Bearer ${token}`}})).json()) as {services: {shop: {versions: {name: string; weight: number}[]}}}
      return state.services.shop.versions.find((v) => v.name === 'canary')?.weight ?? 0
    }
    await eventually(async () => (await canaryWeight()) > 0, 30_000)
    let fromMs = badFromMs
    if (Date.now() >= badFromMs) {
      // A smoke run on a busy machine still goes through every step; its figure is from the first traffic.
      if (!SMOKE) throw new Error('the canary took traffic only after it turned bad; raise the delay')
      fromMs = Date.now()
      console.log('  (the canary took traffic only after it turned bad: timed from its first traffic)')
    }
    let zeroAtMs = 0
    await eventually(async () => {
      if (Date.now() < badFromMs || (await canaryWeight()) > 0) return false
      zeroAtMs = Date.now()
      return true
    }, 120_000)
    const result = await running
    await load.stop()
    if (result.code !== 10) throw new Error(`run ended with ${result.code}: ${result.stderr.slice(-500)}`)
    return zeroAtMs - fromMs
  } finally {
    await cleanUp(dir)
  }
}

if (SMOKE) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements')
console.log('bench:local-rollout (figures from a shared, busy machine are pessimistic)')
await stepWallTime()
const delays: number[] = []
for (let i = 0; i < ROLLBACK_RUNS; i++) delays.push(await timeToRollback())
if (delays.length > 0) console.log(`canary turning bad (5 % errors, 100 req/s, weight 20 %) → weight 0: ${delays.map((d) => `${(d / 1000).toFixed(1)} s`).join(', ')}; worst ${(Math.max(...delays) / INTERVAL_MS).toFixed(2)} intervals of ${INTERVAL_MS / 1000} s (target ≤ 2)`)
