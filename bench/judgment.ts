/**
 * `npm run bench:judgment`: how often the judge rolls back a healthy canary, how fast it catches a
 * bad one, and how many bad responses users get before it does. Simulates many rollouts request by
 * request through the real `decide()`/`evaluate()`, with a seeded PRNG so the figures reproduce.
 *
 * World: 100 requests/s split by the current weight; stable errs 0.5 %; latencies log-normal
 * (median 40 ms); plan 20 → 50 → 100 %, analysis every 10 s, minRequests 50, successRate 99 %,
 * p99 ≤ 500 ms, failureLimit 1, maxFalsePositiveRate 1 %. The engine ticks every second and, like
 * the real engine, reads the recent window (last 3 intervals) at looks once a step is longer.
 * Two long scenarios hold the canary at 20 % for 30 minutes: a healthy one (false alarms over 180
 * looks) and one that turns bad after 20 minutes, judged with and without the recent window.
 */
import {recentWindowMs} from '../src/rollout/core/analysis.js'
import {decide, isLookDue, newRollout} from '../src/rollout/core/decide.js'
import type {LatencyBucket, VersionMetrics, WindowMetrics} from '../src/rollout/core/metrics.js'
import type {AnalysisPolicy, Plan, RolloutState} from '../src/rollout/core/types.js'
import {weights, type Weights} from '../src/rollout/core/weights.js'

const RPS = 100
const TICK_MS = 1000
const INTERVAL_MS = 10_000
const BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Number.POSITIVE_INFINITY]
/** `--smoke`: a few rollouts per scenario, every code path in seconds (test/bench/bench-smoke.test.ts). */
const SMOKE = process.argv.includes('--smoke')
const ROLLOUTS = SMOKE ? 20 : Number(process.env.BENCH_ROLLOUTS ?? 2000)
const LONG_ROLLOUTS = SMOKE ? 4 : Number(process.env.BENCH_LONG_ROLLOUTS ?? 300)
if (SMOKE) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements')
const MAX_SIMULATED_MS = 45 * 60_000

/** mulberry32: small, fast, good enough for simulation, and seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Counts {
  requests: number
  errors: number
  buckets: number[]
}

function emptyCounts(): Counts {
  return {requests: 0, errors: 0, buckets: BUCKETS_SECONDS.map(() => 0)}
}

function toMetrics(c: Counts): VersionMetrics {
  let cumulative = 0
  const latency: LatencyBucket[] = BUCKETS_SECONDS.map((le, i) => {
    cumulative += c.buckets[i]!
    return {leSeconds: le, count: cumulative}
  })
  return {requests: c.requests, errors: c.errors, latency}
}

function addCounts(into: Counts, from: Counts): void {
  into.requests += from.requests
  into.errors += from.errors
  for (let i = 0; i < into.buckets.length; i++) into.buckets[i]! += from.buckets[i]!
}

interface Scenario {
  readonly stableErrorRate: number
  readonly canaryErrorRate: number
  readonly canaryLatencyMedianMs: number
  readonly policy: AnalysisPolicy
  /** The plan's steps (default 20 → 50 → 100 %). */
  readonly steps?: Plan['steps']
  /** From this time on the canary errs at `laterErrorRate`; detection is timed from it. */
  readonly turnsBadAtMs?: number
  readonly laterErrorRate?: number
  /** Judge the recent window too (default true), as the engine does. */
  readonly recentWindow?: boolean
}

interface Outcome {
  readonly state: RolloutState
  /** From the canary's first traffic to the decision to roll back (weight 0), if rolled back. */
  readonly detectionMs?: number
  readonly badResponses: number
  readonly canaryRequests: number
}

function simulate(scenario: Scenario, random: () => number): Outcome {
  const plan: Plan = {steps: scenario.steps ?? [{kind: 'setWeight', weight: 20}, {kind: 'setWeight', weight: 50}, {kind: 'setWeight', weight: 100}], totalWeight: 100, analysis: scenario.policy}
  const recentMs = recentWindowMs(scenario.policy)
  const recentTicks = recentMs / TICK_MS
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  const sampleLatencySeconds = (medianMs: number) => (medianMs / 1000) * Math.exp(0.5 * gaussian())
  let state = newRollout({name: 'bench', stableImage: 'app:v1', canaryImage: 'app:v2', nowMs: 0})
  let routed: Weights = weights(0)
  let windowStart = -1
  let canary = emptyCounts()
  let stable = emptyCounts()
  // Per-tick counts of the current window, for the recent window.
  let ticks: {canary: Counts; stable: Counts}[] = []
  let firstTrafficMs: number | undefined
  let badResponses = 0
  let canaryRequests = 0
  for (let now = 0; now <= MAX_SIMULATED_MS; now += TICK_MS) {
    if (state.windowStartMs !== windowStart) {
      windowStart = state.windowStartMs
      canary = emptyCounts()
      stable = emptyCounts()
      ticks = []
    }
    if (now > 0) {
      const tick = {canary: emptyCounts(), stable: emptyCounts()}
      ticks.push(tick)
      const canaryErrorRate = scenario.turnsBadAtMs !== undefined && now > scenario.turnsBadAtMs ? (scenario.laterErrorRate ?? scenario.canaryErrorRate) : scenario.canaryErrorRate
      for (let r = 0; r < RPS; r++) {
        const toCanary = random() * routed.total < routed.canary
        const counts = toCanary ? tick.canary : tick.stable
        const failed = random() < (toCanary ? canaryErrorRate : scenario.stableErrorRate)
        const seconds = sampleLatencySeconds(toCanary ? scenario.canaryLatencyMedianMs : 40)
        counts.requests++
        if (failed) counts.errors++
        counts.buckets[BUCKETS_SECONDS.findIndex((le) => seconds <= le)]!++
        if (toCanary) {
          canaryRequests++
          if (failed) badResponses++
        }
      }
      addCounts(canary, tick.canary)
      addCounts(stable, tick.stable)
    }
    let recentMetrics: WindowMetrics | undefined
    if ((scenario.recentWindow ?? true) && now - recentMs > windowStart && isLookDue(state, plan, now)) {
      const recentCanary = emptyCounts()
      const recentStable = emptyCounts()
      for (const t of ticks.slice(-recentTicks)) {
        addCounts(recentCanary, t.canary)
        addCounts(recentStable, t.stable)
      }
      recentMetrics = {sinceMs: now - recentMs, untilMs: now, canary: toMetrics(recentCanary), stable: toMetrics(recentStable)}
    }
    let decision = decide(state, {nowMs: now, weights: routed, canary: {ready: true, readyReplicas: 1, replicas: 1}, metrics: {sinceMs: windowStart, untilMs: now, canary: toMetrics(canary), stable: toMetrics(stable)}, ...(recentMetrics === undefined ? {} : {recentMetrics})}, plan)
    for (;;) {
      for (const action of decision.actions) {
        if (action.type === 'setWeights') {
          routed = action.weights
          if (routed.canary > 0 && firstTrafficMs === undefined) firstTrafficMs = now
        }
      }
      state = decision.next
      if (state.phase === 'RollingBack' && routed.canary === 0) {
        return finishRollback(decide(state, {nowMs: now, weights: routed}, plan).next, now, scenario.turnsBadAtMs ?? firstTrafficMs, badResponses, canaryRequests)
      }
      if (!decision.immediate) break
      decision = decide(state, {nowMs: now, weights: routed}, plan)
    }
    if (state.phase === 'Promoted' || state.phase === 'Inconclusive' || state.phase === 'Aborted' || state.phase === 'Failed' || state.phase === 'RolledBack') break
  }
  return {state, badResponses, canaryRequests}
}

function finishRollback(state: RolloutState, now: number, firstTrafficMs: number | undefined, badResponses: number, canaryRequests: number): Outcome {
  return {state, detectionMs: now - (firstTrafficMs ?? now), badResponses, canaryRequests}
}

function run(label: string, scenario: Scenario, seed: number, rollouts = ROLLOUTS): Outcome[] {
  const random = prng(seed)
  const outcomes: Outcome[] = []
  for (let i = 0; i < rollouts; i++) outcomes.push(simulate(scenario, random))
  const phases = new Map<string, number>()
  for (const o of outcomes) phases.set(o.state.phase, (phases.get(o.state.phase) ?? 0) + 1)
  console.log(`  ${label}: ${[...phases].map(([p, n]) => `${p} ${n}`).join(', ')}`)
  return outcomes
}

function percent(part: number, whole: number): string {
  return `${((part / whole) * 100).toFixed(2)} %`
}

/** The naive check the docs warn about: fail a look when the observed success rate is below the threshold. */
function naiveFalseAlarmShare(random: () => number, thresholdPercent: number, errorRate: number, requestsPerLook: number, looks: number): number {
  let alarms = 0
  for (let i = 0; i < ROLLOUTS; i++) {
    for (let k = 0; k < looks; k++) {
      let errors = 0
      for (let r = 0; r < requestsPerLook; r++) if (random() < errorRate) errors++
      if (((requestsPerLook - errors) / requestsPerLook) * 100 < thresholdPercent) {
        alarms++
        break
      }
    }
  }
  return alarms / ROLLOUTS
}

const policy: AnalysisPolicy = {intervalMs: INTERVAL_MS, minRequests: 50, successRatePercent: 99, latencyP99Ms: 500, failureLimit: 1, progressDeadlineMs: 60_000, maxFalsePositiveRate: 0.01}
const started = performance.now()
console.log(`bench:judgment — ${ROLLOUTS} simulated rollouts per scenario, ${RPS} req/s, plan 20 → 50 → 100 %, interval ${INTERVAL_MS / 1000} s`)
console.log(`policy: minRequests ${policy.minRequests}, successRate ≥ ${policy.successRatePercent} %, p99 ≤ ${policy.latencyP99Ms} ms, failureLimit ${policy.failureLimit}, maxFalsePositiveRate ${policy.maxFalsePositiveRate}`)

const healthy = run('healthy canary (0.5 % errors, like stable)', {stableErrorRate: 0.005, canaryErrorRate: 0.005, canaryLatencyMedianMs: 40, policy}, 1)
const tight = run('healthy canary at the threshold (0.5 % errors, successRate ≥ 99.5 %)', {stableErrorRate: 0.005, canaryErrorRate: 0.005, canaryLatencyMedianMs: 40, policy: {...policy, successRatePercent: 99.5}}, 2)
const bad = run('bad canary (5 % errors vs 0.5 %)', {stableErrorRate: 0.005, canaryErrorRate: 0.05, canaryLatencyMedianMs: 40, policy}, 3)
const slow = run('slow canary (median 200 ms vs 40 ms, p99 ≈ 640 ms)', {stableErrorRate: 0.005, canaryErrorRate: 0.005, canaryLatencyMedianMs: 200, policy}, 4)

const longPause = {steps: [{kind: 'setWeight', weight: 20}, {kind: 'pause', durationMs: 30 * 60_000}, {kind: 'setWeight', weight: 100}] as Plan['steps']}
const healthyLong = run('healthy canary held 30 min at 20 % (180 looks)', {stableErrorRate: 0.005, canaryErrorRate: 0.005, canaryLatencyMedianMs: 40, policy, ...longPause}, 6, LONG_ROLLOUTS)
const lateBad = {stableErrorRate: 0.005, canaryErrorRate: 0.005, laterErrorRate: 0.05, turnsBadAtMs: 20 * 60_000, canaryLatencyMedianMs: 40, policy, ...longPause}
const late = run('canary turning bad (0.5 % → 5 %) after 20 min at 20 %', lateBad, 7, LONG_ROLLOUTS)
const lateWithout = run('the same, judged on the whole step only (no recent window)', {...lateBad, recentWindow: false}, 7, LONG_ROLLOUTS)

const rolledBack = (os: Outcome[]) => os.filter((o) => o.state.phase === 'RolledBack')
const caughtWithin = (os: Outcome[], ms: number) => os.filter((o) => o.detectionMs !== undefined && o.detectionMs <= ms).length
const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length)

console.log('')
console.log(`healthy canaries rolled back:                 ${percent(rolledBack(healthy).length, ROLLOUTS)}   (target ≤ 1 %)`)
console.log(`healthy canaries at the threshold rolled back: ${percent(rolledBack(tight).length, ROLLOUTS)}   (target ≤ 1 %)`)
console.log(`bad canaries caught within 2 intervals:        ${percent(caughtWithin(bad, 2 * INTERVAL_MS), ROLLOUTS)}   (target ≥ 99 %)`)
console.log(`bad canaries caught within 1 interval:         ${percent(caughtWithin(bad, INTERVAL_MS), ROLLOUTS)}`)
console.log(`mean bad responses served before rollback:    ${mean(rolledBack(bad).map((o) => o.badResponses)).toFixed(1)} (of ${mean(rolledBack(bad).map((o) => o.canaryRequests)).toFixed(0)} canary requests)`)
console.log(`slow canaries caught within 2 intervals:       ${percent(caughtWithin(slow, 2 * INTERVAL_MS), ROLLOUTS)}`)
console.log(`healthy canaries held 30 min rolled back:     ${percent(rolledBack(healthyLong).length, LONG_ROLLOUTS)}   (target ≤ 1 %; ${LONG_ROLLOUTS} rollouts)`)
const lateMedian = (os: Outcome[]) => {
  const times = os.flatMap((o) => (o.detectionMs === undefined ? [] : [o.detectionMs])).sort((a, b) => a - b)
  return times.length === 0 ? 'never' : `${(times[Math.floor(times.length / 2)]! / 1000).toFixed(0)} s`
}
console.log(`canaries turning bad after 20 min, caught within 2 / 3 intervals of turning: ${percent(caughtWithin(late, 2 * INTERVAL_MS), LONG_ROLLOUTS)} / ${percent(caughtWithin(late, 3 * INTERVAL_MS), LONG_ROLLOUTS)}, median ${lateMedian(late)}`)
console.log(`  without the recent window: within 3 intervals ${percent(caughtWithin(lateWithout, 3 * INTERVAL_MS), LONG_ROLLOUTS)}, median ${lateMedian(lateWithout)}, rolled back at all ${percent(rolledBack(lateWithout).length, LONG_ROLLOUTS)}`)
console.log(`naive check (observed rate < 99.5 % on any of 3 looks of 200 requests at 0.5 % errors) fails ${percent(naiveFalseAlarmShare(prng(5), 99.5, 0.005, 200, 3) * ROLLOUTS, ROLLOUTS)} of healthy canaries`)
console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s; seeds fixed, figures reproduce)`)
