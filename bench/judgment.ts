/**
 * `npm run bench:judgment [-- --smoke]`: how the judge treats healthy and bad canaries under a
 * traffic model of its own, through the real core (`decide` with a fake clock, ticking every
 * second like the engine), with the analysis policy `canary init` writes (parsed from the starter
 * spec, not copied). Figures, not tests: each class runs ≥ 1,000 seeded rollouts (`--smoke`: 20)
 * and prints shares with 95 % Clopper–Pearson intervals, detection times with distribution-free
 * 95 % intervals of the quantile, and mean bad responses served; Argo's default static rule
 * (success rate per interval ≥ 99 %, failureLimit 0) runs on the same traffic beside ours.
 *
 * `BENCH_ROLLOUTS=n` changes the count, `BENCH_ONLY=text` runs the classes whose name contains it.
 *
 * Traffic model (per second): requests ~ Poisson(rate), the rate bursting ×2–4 for tens of
 * seconds (a two-state Markov chain); each request goes to the canary with the weight's
 * probability; errors ~ Poisson(requests × rate) plus, in the clumpy classes, clumps of 2–20
 * errors tied to one version (a client retrying under its sticky cookie, a flapping replica) at
 * the same average rate for both versions, sometimes spilling into the next second; latencies
 * log-normal (median 40 ms, σ 0.5, p99 ≈ 128 ms) binned into the proxy's buckets.
 */
import {binomialLowerBound, binomialUpperBound} from '../src/rollout/core/statistics.js'
import {decide, newRollout} from '../src/rollout/core/decide.js'
import {mulberry32} from '../src/rollout/core/sequential.js'
import type {LatencyBucket, VersionMetrics} from '../src/rollout/core/metrics.js'
import type {AnalysisPolicy, Plan, RolloutState, Step} from '../src/rollout/core/types.js'
import {weights, type Weights} from '../src/rollout/core/weights.js'
import {DURATION_BUCKETS_SECONDS} from '../src/proxy/traffic-stats.js'
import {planFromRelease} from '../src/rollout/plan-from-release.js'
import {parseRelease} from '../src/release/load-release.js'
import {starterSpec} from '../src/release/starter.js'

const SMOKE = process.argv.includes('--smoke')
const ROLLOUTS = SMOKE ? 20 : Number(process.env.BENCH_ROLLOUTS ?? 1000)
const TICK_MS = 1000
const BOUNDS = [...DURATION_BUCKETS_SECONDS, Number.POSITIVE_INFINITY]
const STABLE_MEDIAN_MS = 40
const LATENCY_SIGMA = 0.5
if (SMOKE) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements')

// ---------------------------------------------------------------- random numbers

const prng = mulberry32

class Random {
  constructor(readonly uniform: () => number) {}

  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.uniform())) * Math.cos(2 * Math.PI * this.uniform())
  }

  poisson(mean: number): number {
    if (mean <= 0) return 0
    if (mean > 40) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()))
    const limit = Math.exp(-mean)
    let k = 0
    let p = this.uniform()
    while (p > limit) {
      k++
      p *= this.uniform()
    }
    return k
  }

  binomial(n: number, p: number): number {
    if (n <= 0 || p <= 0) return 0
    if (p >= 1) return n
    if (n < 25) {
      let k = 0
      for (let i = 0; i < n; i++) if (this.uniform() < p) k++
      return k
    }
    const mean = n * p
    if (mean < 15) return Math.min(n, this.poisson(mean))
    if (n - mean < 15) return n - Math.min(n, this.poisson(n - mean))
    return Math.min(n, Math.max(0, Math.round(mean + Math.sqrt(mean * (1 - p)) * this.normal())))
  }
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf). */
function normalCdf(z: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(z / Math.SQRT2))
  const erf = 1 - (((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t) * Math.exp(-(z * z) / 2)
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf)
}

/** Non-cumulative probability of each bucket for a log-normal latency with this median. */
function bucketProbabilities(medianMs: number): number[] {
  let previous = 0
  return BOUNDS.map((le) => {
    const cdf = Number.isFinite(le) ? normalCdf(Math.log((le * 1000) / medianMs) / LATENCY_SIGMA) : 1
    const p = Math.max(0, cdf - previous)
    previous = cdf
    return p
  })
}

// ---------------------------------------------------------------- traffic model

/** One class of situation. Rates are per request; times in ms from the canary's first traffic. */
interface Scenario {
  readonly name: string
  readonly rps: number
  readonly steps: readonly Step[]
  readonly stableErrorRate: number
  readonly canaryErrorRate: number
  /** Canary latency = stable latency × this (so its p99 is this × stable's). */
  readonly canaryLatencyFactor?: number
  /** Clumps of 2–20 errors per request, each version alike (on top of the per-request rates). */
  readonly clumpRate?: number
  /** Both versions degrade together: error rate × `factor` from `fromMs` for `forMs`. */
  readonly shared?: {readonly fromMs: number; readonly forMs: number; readonly factor: number}
  /** The canary's error rate changes to `rate` at `atMs` (detection is timed from then). */
  readonly turnsBad?: {readonly atMs: number; readonly rate: number}
  /** A segment of `share` of the requests where the canary errs at `rate` (elsewhere canaryErrorRate). */
  readonly segment?: {readonly share: number; readonly rate: number}
  readonly maxMs: number
  /** What the class should do. */
  readonly expect: 'healthy' | 'bad'
}

interface Counts {
  requests: number
  errors: number
  buckets: number[]
}

const emptyCounts = (): Counts => ({requests: 0, errors: 0, buckets: BOUNDS.map(() => 0)})

function toMetrics(c: Counts): VersionMetrics {
  let cumulative = 0
  const latency: LatencyBucket[] = BOUNDS.map((le, i) => {
    cumulative += c.buckets[i]!
    return {leSeconds: le, count: cumulative}
  })
  return {requests: c.requests, errors: c.errors, latency}
}

/** Generates one rollout's traffic second by second; the same seed gives the same world to both judges. */
class World {
  private bursting = false
  private spill = {canary: 0, stable: 0}
  private readonly stableBuckets = bucketProbabilities(STABLE_MEDIAN_MS)
  private readonly canaryBuckets: number[]

  constructor(
    private readonly scenario: Scenario,
    private readonly random: Random,
  ) {
    this.canaryBuckets = bucketProbabilities(STABLE_MEDIAN_MS * (scenario.canaryLatencyFactor ?? 1))
  }

  /** One second of traffic at canary share `share` (0–1), `sinceCanaryMs` after the canary's first traffic. */
  second(share: number, sinceCanaryMs: number | undefined): {canary: Counts; stable: Counts} {
    const s = this.scenario
    const r = this.random
    if (this.bursting ? r.uniform() < 1 / 20 : r.uniform() < 1 / 120) this.bursting = !this.bursting
    const rate = s.rps * (this.bursting ? 2 + 2 * r.uniform() : 1)
    const total = r.poisson(rate)
    const canaryRequests = r.binomial(total, share)
    const t = sinceCanaryMs ?? -1
    const sharedFactor = s.shared !== undefined && t >= s.shared.fromMs && t < s.shared.fromMs + s.shared.forMs ? s.shared.factor : 1
    let canaryRate = s.turnsBad !== undefined && t >= s.turnsBad.atMs ? s.turnsBad.rate : s.canaryErrorRate
    if (s.segment !== undefined) canaryRate = s.segment.share * s.segment.rate + (1 - s.segment.share) * canaryRate
    const canary = this.version(canaryRequests, Math.min(1, canaryRate * sharedFactor), this.canaryBuckets, 'canary')
    const stable = this.version(total - canaryRequests, Math.min(1, s.stableErrorRate * sharedFactor), this.stableBuckets, 'stable')
    return {canary, stable}
  }

  private version(requests: number, errorRate: number, buckets: number[], which: 'canary' | 'stable'): Counts {
    const r = this.random
    const counts = emptyCounts()
    counts.requests = requests
    let errors = r.binomial(requests, errorRate) + this.spill[which]
    this.spill[which] = 0
    const clumps = r.poisson(requests * (this.scenario.clumpRate ?? 0))
    for (let i = 0; i < clumps; i++) {
      const size = 2 + Math.floor(r.uniform() * 19)
      // A third of the clumps spill half their errors into the next second.
      if (r.uniform() < 1 / 3) {
        const later = Math.floor(size / 2)
        this.spill[which] += later
        errors += size - later
      } else errors += size
    }
    // A clump's errors are extra requests (retries), so requests grow with them.
    counts.errors = errors
    counts.requests = Math.max(requests, errors)
    let left = counts.requests
    let mass = 1
    for (let i = 0; i < buckets.length; i++) {
      const p = buckets[i]!
      const n = i === buckets.length - 1 ? left : r.binomial(left, mass <= 0 ? 0 : Math.min(1, p / mass))
      counts.buckets[i] = n
      left -= n
      mass -= p
    }
    return counts
  }
}

// ---------------------------------------------------------------- the two judges

interface Outcome {
  readonly phase: string
  /** From the canary's first traffic (or from when it turned bad) to weight 0. */
  readonly rollbackMs?: number
  /** From the canary's first traffic to promotion. */
  readonly promotedMs?: number
  /** Canary error responses served before the end. */
  readonly badResponses: number
}

/** Ours: the real reducer, fed what the proxy's stats API would report since the weight was set. */
function runOurs(scenario: Scenario, policy: AnalysisPolicy, seed: number): Outcome {
  const plan: Plan = {steps: scenario.steps, totalWeight: 100, analysis: policy}
  const world = new World(scenario, new Random(prng(seed)))
  let state: RolloutState = newRollout({name: 'bench', stableImage: 'app:v1', canaryImage: 'app:v2', nowMs: 0})
  let routed: Weights = weights(0)
  let windowStart = -1
  let canary = emptyCounts()
  let stable = emptyCounts()
  let firstTrafficMs: number | undefined
  let badResponses = 0
  const ready = {ready: true, readyReplicas: 1, replicas: 1}
  for (let now = 0; now <= scenario.maxMs + 60_000; now += TICK_MS) {
    if (state.windowStartMs !== windowStart) {
      windowStart = state.windowStartMs
      canary = emptyCounts()
      stable = emptyCounts()
    }
    if (now > 0) {
      const second = world.second(routed.canary / routed.total, firstTrafficMs === undefined ? undefined : now - firstTrafficMs)
      add(canary, second.canary)
      add(stable, second.stable)
      badResponses += second.canary.errors
    }
    let decision = decide(state, {nowMs: now, weights: routed, canary: ready, metrics: {sinceMs: windowStart, untilMs: now, canary: toMetrics(canary), stable: toMetrics(stable)}}, plan)
    for (;;) {
      for (const action of decision.actions) {
        if (action.type !== 'setWeights') continue
        routed = action.weights
        if (routed.canary > 0 && firstTrafficMs === undefined) firstTrafficMs = now
      }
      state = decision.next
      if (state.phase === 'RollingBack' && routed.canary === 0) {
        const from = (firstTrafficMs ?? now) + (scenario.turnsBad?.atMs ?? 0)
        const phase = decide(state, {nowMs: now, weights: routed}, plan).next.phase
        return now < from ? {phase: `${phase} before turning bad`, badResponses} : {phase, rollbackMs: now - from, badResponses}
      }
      if (state.phase === 'Promoted') return {phase: 'Promoted', promotedMs: now - (firstTrafficMs ?? now), badResponses}
      if (!decision.immediate) break
      decision = decide(state, {nowMs: now, weights: routed}, plan)
    }
    if (state.phase === 'Inconclusive' || state.phase === 'RolledBack' || state.phase === 'Aborted' || state.phase === 'Failed') break
    if (firstTrafficMs !== undefined && now - firstTrafficMs > scenario.maxMs) return {phase: `still ${state.phase}`, badResponses}
  }
  return {phase: state.phase, badResponses}
}

function add(into: Counts, from: Counts): void {
  into.requests += from.requests
  into.errors += from.errors
  for (let i = 0; i < into.buckets.length; i++) into.buckets[i]! += from.buckets[i]!
}

/** Argo Rollouts' default static rule: every interval, canary success rate over the interval ≥ 99 %, failureLimit 0; steps advance after one passed interval (holds after their pause). */
function runStatic(scenario: Scenario, intervalMs: number, seed: number): Outcome {
  const world = new World(scenario, new Random(prng(seed)))
  let stepIndex = 0
  let weight = 0
  let stepStartMs = 0
  let badResponses = 0
  let interval = emptyCounts()
  const weightAt = (index: number) => {
    let w = 0
    for (let i = 0; i <= index && i < scenario.steps.length; i++) {
      const step = scenario.steps[i]!
      if (step.kind === 'setWeight') w = step.weight
    }
    return w
  }
  weight = weightAt(0)
  for (let now = TICK_MS; now <= scenario.maxMs; now += TICK_MS) {
    const second = world.second(weight / 100, now)
    add(interval, second.canary)
    badResponses += second.canary.errors
    if (now % intervalMs !== 0) continue
    if (interval.requests > 0 && (interval.requests - interval.errors) / interval.requests < 0.99) {
      const from = scenario.turnsBad?.atMs ?? 0
      return now < from ? {phase: 'RolledBack before turning bad', badResponses} : {phase: 'RolledBack', rollbackMs: now - from, badResponses}
    }
    interval = emptyCounts()
    const step = scenario.steps[stepIndex]!
    const done = step.kind === 'setWeight' || (step.durationMs !== undefined && now - stepStartMs >= step.durationMs)
    if (!done) continue
    stepIndex++
    stepStartMs = now
    if (stepIndex >= scenario.steps.length) return {phase: 'Promoted', promotedMs: now, badResponses}
    weight = weightAt(stepIndex)
  }
  return {phase: 'still Progressing', badResponses}
}

// ---------------------------------------------------------------- figures

function share(part: number, whole: number): string {
  const low = binomialLowerBound(part, whole, 0.025) * 100
  const high = binomialUpperBound(part, whole, 0.025) * 100
  return `${((part / whole) * 100).toFixed(1)} % [${low.toFixed(1)}, ${high.toFixed(1)}]`
}

/** Quantile q of `times` with a distribution-free 95 % interval (order statistics at binomial ranks). */
function quantile(times: readonly number[], q: number): string {
  if (times.length === 0) return '–'
  const sorted = [...times].sort((a, b) => a - b)
  const n = sorted.length
  const at = (rank: number) => sorted[Math.min(n - 1, Math.max(0, rank))]! / 1000
  const spread = 1.96 * Math.sqrt(n * q * (1 - q))
  return `${at(Math.ceil(n * q) - 1).toFixed(0)} s [${at(Math.floor(n * q - spread) - 1).toFixed(0)}, ${at(Math.ceil(n * q + spread) - 1).toFixed(0)}]`
}

interface Summary {
  readonly n: number
  readonly promoted: number
  readonly rolledBack: number
  readonly inconclusive: number
  readonly other: number
  readonly otherPhases: string[]
  readonly rollbackTimes: number[]
  readonly promotedTimes: number[]
  readonly meanBadBeforeRollback: number
}

function summarize(outcomes: readonly Outcome[]): Summary {
  const rolled = outcomes.filter((o) => o.rollbackMs !== undefined && o.phase === 'RolledBack')
  return {
    n: outcomes.length,
    promoted: outcomes.filter((o) => o.phase === 'Promoted').length,
    rolledBack: rolled.length,
    inconclusive: outcomes.filter((o) => o.phase === 'Inconclusive').length,
    other: outcomes.filter((o) => !['Promoted', 'RolledBack', 'Inconclusive'].includes(o.phase)).length,
    otherPhases: outcomes.filter((o) => !['Promoted', 'RolledBack', 'Inconclusive'].includes(o.phase)).map((o) => o.phase),
    rollbackTimes: rolled.map((o) => o.rollbackMs!),
    promotedTimes: outcomes.flatMap((o) => (o.promotedMs === undefined ? [] : [o.promotedMs])),
    meanBadBeforeRollback: rolled.length === 0 ? 0 : rolled.reduce((a, o) => a + o.badResponses, 0) / rolled.length,
  }
}

function describe(label: string, s: Summary): string {
  const parts = [`promoted ${share(s.promoted, s.n)}`, `rolled back ${share(s.rolledBack, s.n)}`, `inconclusive ${share(s.inconclusive, s.n)}`]
  if (s.other > 0) parts.push(`other ${s.other} (${[...new Set(s.otherPhases)].join(', ')})`)
  if (s.rollbackTimes.length > 0) parts.push(`rollback median ${quantile(s.rollbackTimes, 0.5)}, p95 ${quantile(s.rollbackTimes, 0.95)}, mean bad responses served ${s.meanBadBeforeRollback.toFixed(1)}`)
  if (s.promotedTimes.length > 0) parts.push(`promotion median ${quantile(s.promotedTimes, 0.5)}, p95 ${quantile(s.promotedTimes, 0.95)}`)
  return `    ${label.padEnd(7)} ${parts.join('; ')}`
}

interface Goal {
  readonly text: string
  readonly met: (ours: Summary) => boolean
}

const within = (times: readonly number[], ms: number) => times.filter((t) => t <= ms).length
/** Goals are judged on the point estimate; the interval is printed beside it. */
const goals = {
  healthy: {text: 'rolled back ≤ 1 %', met: (s: Summary) => s.rolledBack / s.n <= 0.01},
  neverPromoted: (limit: number) => ({text: `promoted ≤ ${limit * 100} %`, met: (s: Summary) => s.promoted / s.n <= limit}),
}

// ---------------------------------------------------------------- classes

const starter = parseRelease(starterSpec('bench', 'proxy'), 'starter.yaml')
const policy = planFromRelease(starter.release).analysis
const auto: Step[] = [{kind: 'setWeight', weight: 20}, {kind: 'setWeight', weight: 50}, {kind: 'setWeight', weight: 100}]
const hold30: Step[] = [{kind: 'setWeight', weight: 20}, {kind: 'pause', durationMs: 30 * 60_000}, {kind: 'setWeight', weight: 100}]
const base = {rps: 100, steps: auto, stableErrorRate: 0.005, canaryErrorRate: 0.005, maxMs: 60 * 60_000}
const clumpRate = 0.0002

const classes: {scenario: Scenario; goals: Goal[]}[] = [
  {scenario: {...base, name: 'healthy, bursty traffic, 100 rps', expect: 'healthy'}, goals: [goals.healthy]},
  {scenario: {...base, name: 'healthy, clumps of 2–20 errors tied to one version', clumpRate, expect: 'healthy'}, goals: [goals.healthy]},
  {scenario: {...base, name: 'healthy, shared degradation (both ×10 errors for 5 min)', shared: {fromMs: 60_000, forMs: 300_000, factor: 10}, expect: 'healthy'}, goals: [goals.healthy]},
  {scenario: {...base, name: 'healthy, 30-minute hold at 20 %, with clumps', steps: hold30, clumpRate, expect: 'healthy'}, goals: [goals.healthy]},
  {scenario: {...base, name: '0.50 % vs 0.55 % at 5,000 rps, 30-minute hold', rps: 5000, steps: hold30, canaryErrorRate: 0.0055, expect: 'healthy'}, goals: [goals.healthy]},
  {scenario: {...base, name: 'healthy at 2 rps', rps: 2, expect: 'healthy'}, goals: [goals.healthy, {text: 'promoted ≥ 95 % within 15 min', met: (s) => within(s.promotedTimes, 15 * 60_000) / s.n >= 0.95}]},
  {scenario: {...base, name: '10× errors (5 %) at 100 rps, weight 20 %', canaryErrorRate: 0.05, expect: 'bad'}, goals: [{text: 'rollback p95 ≤ 30 s', met: (s) => s.rolledBack / s.n >= 0.95 && within(s.rollbackTimes, 30_000) / s.n >= 0.95}]},
  {scenario: {...base, name: '5× errors (2.5 %)', canaryErrorRate: 0.025, expect: 'bad'}, goals: [goals.neverPromoted(0.01)]},
  {scenario: {...base, name: '3× errors (1.5 %)', canaryErrorRate: 0.015, expect: 'bad'}, goals: [goals.neverPromoted(0.01), {text: 'rolled back within 10 min ≥ 95 %', met: (s) => within(s.rollbackTimes, 10 * 60_000) / s.n >= 0.95}]},
  {scenario: {...base, name: '2× errors (1.0 %)', canaryErrorRate: 0.01, expect: 'bad'}, goals: [goals.neverPromoted(0.05)]},
  {scenario: {...base, name: 'latency: canary p99 3× stable', canaryLatencyFactor: 3, expect: 'bad'}, goals: [goals.neverPromoted(0.01)]},
  {scenario: {...base, name: 'latency: canary p99 1.5× stable', canaryLatencyFactor: 1.5, expect: 'bad'}, goals: [goals.neverPromoted(0.1)]},
  {scenario: {...base, name: '30 % errors at 2 rps', rps: 2, canaryErrorRate: 0.3, expect: 'bad'}, goals: [{text: 'rolled back within 3 min (all)', met: (s) => within(s.rollbackTimes, 3 * 60_000) / s.n >= 0.99}]},
  {scenario: {...base, name: 'bad on one route only (10 % of requests fail 10 %)', segment: {share: 0.1, rate: 0.1}, expect: 'bad'}, goals: [goals.neverPromoted(0.01)]},
  {scenario: {...base, name: 'turns bad (5 %) after 20 min of a 30-minute hold', steps: hold30, turnsBad: {atMs: 20 * 60_000, rate: 0.05}, expect: 'bad'}, goals: [goals.neverPromoted(0.01), {text: 'rollback p95 ≤ 60 s after turning', met: (s) => within(s.rollbackTimes, 60_000) / s.n >= 0.95}]},
]

const started = performance.now()
console.log(`bench:judgment — ${ROLLOUTS} seeded rollouts per class${SMOKE ? ' (--smoke)' : ''}; plan 20 → 50 → 100 % (or 20 % held 30 min), engine tick 1 s`)
console.log(`policy (from \`canary init\`): interval ${policy.intervalMs / 1000} s, tolerance errors ${policy.errorTolerance?.ratio}× or +${policy.errorTolerance?.points} pt or +${policy.errorTolerance?.perMinute ?? 0}/min at full traffic, latency ${policy.latencyTolerance?.ratio}× or +${policy.latencyTolerance?.points} pt or +${policy.latencyTolerance?.perMinute ?? 0}/min, maxFalsePositiveRate ${policy.maxFalsePositiveRate}, maxFalsePassRate ${policy.maxFalsePassRate}, minRequests ${policy.minRequests}, deadline ${(policy.deadlineMs ?? 0) / 60_000} min, onInconclusive ${policy.onInconclusive}`)
console.log('static: Argo default (canary success rate ≥ 99 % per 30 s interval, failureLimit 0); shares with 95 % intervals; times from the canary\'s first traffic (or from turning bad)\n')
let missed = 0
const only = process.env.BENCH_ONLY
for (const [index, {scenario, goals: classGoals}] of classes.entries()) {
  if (only !== undefined && !scenario.name.includes(only)) continue
  const ours: Outcome[] = []
  const statics: Outcome[] = []
  for (let i = 0; i < ROLLOUTS; i++) {
    const seed = (index + 1) * 1_000_003 + i
    ours.push(runOurs(scenario, policy, seed))
    statics.push(runStatic(scenario, 30_000, seed))
  }
  const summary = summarize(ours)
  console.log(`${scenario.name} (${scenario.expect})`)
  console.log(describe('ours', summary))
  console.log(describe('static', summarize(statics)))
  for (const goal of classGoals) {
    const met = goal.met(summary)
    if (!met) missed++
    console.log(`    goal: ${goal.text}: ${met ? 'met' : 'NOT MET'}`)
  }
}
console.log(`\n${missed} goal(s) not met; ${((performance.now() - started) / 1000).toFixed(1)} s; seeds fixed, figures reproduce`)
