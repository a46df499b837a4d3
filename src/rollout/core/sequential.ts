/**
 * Anytime-valid comparison of canary and stable by betting on time blocks (docs/analysis.md).
 *
 * The unit is a time block (about a second of traffic), not a request: errors that come in clumps
 * (a client retrying under its sticky cookie, one flapping replica) land in one block and count
 * once. In block b, of the n_b events (errors, or requests slower than a bound) a share r_b came
 * from the canary. If the canary's per-request event rate is ρ times stable's, each event (each
 * clump, whatever its size) is the canary's with probability
 *   θ(ρ) = ρ·w_b / (ρ·w_b + 1 − w_b),   w_b = the canary's share of the block's requests,
 * so E[r_b | sizes, past] = θ(ρ) exactly (docs/analysis.md has the two-line proof).
 *
 * With θ'_b = θ(tolerated ratio), two bets run on x_b = r_b − θ'_b ∈ [−θ', 1 − θ']:
 * - rollback: wealth ∏ (1 + λ_b x_b), λ_b ∈ [0, 0.9/θ'_b]: a non-negative supermartingale while the
 *   canary is within the tolerance, so P(it ever reaches 1/α) ≤ α (Ville's inequality), at any
 *   number of looks and across weight changes;
 * - pass (non-inferiority): wealth ∏ (1 − λ_b x_b), λ_b ∈ [0, 0.9/(1 − θ'_b)]: a supermartingale
 *   while the canary is worse than the tolerance, so it passes such a canary with probability ≤ α.
 * λ_b is chosen from earlier blocks only ("predictable plug-in", Waudby-Smith & Ramdas 2023,
 * doi:10.1093/jrsssb/qkad009): λ = mean/second moment of past x. The rollback bet uses an
 * exponentially weighted recent mean, so it stops betting while the canary looks healthy and
 * starts again when it turns bad late; the pass bet uses all past blocks.
 */

/** Betting state of one comparison (errors, or slow requests). Plain JSON: it is persisted. */
export interface BetState {
  /** ln of the wealth of the relative rollback bet (on the canary's share of events). */
  readonly logWealthRollback: number
  /** ln of the wealth of the relative pass bet. */
  readonly logWealthPass: number
  /** ln of the wealth of the absolute rollback bet (on blocks with a canary event against the tolerated rate). */
  readonly logWealthRollbackAbsolute: number
  /** ln of the wealth of the absolute pass bet (request by request against the tolerated rate). */
  readonly logWealthPassAbsolute: number
  /** Exponentially weighted sums of x and x² over recent blocks (relative rollback bet's plug-in). */
  readonly recentSum: number
  readonly recentSquares: number
  /** The same for the absolute rollback bet. */
  readonly absoluteSum: number
  readonly absoluteSquares: number
  /** Blocks with at least one event. */
  readonly blocks: number
  /** Events (clumps counted by size) per version, over all blocks. */
  readonly canaryEvents: number
  readonly stableEvents: number
  /** Σ n_b·w_b: the canary events expected if both versions had the same rate. */
  readonly expectedCanaryEvents: number
}

/** A bet before any block. */
export const NO_BETS: BetState = {logWealthRollback: 0, logWealthPass: 0, logWealthRollbackAbsolute: 0, logWealthPassAbsolute: 0, recentSum: 0, recentSquares: 0, absoluteSum: 0, absoluteSquares: 0, blocks: 0, canaryEvents: 0, stableEvents: 0, expectedCanaryEvents: 0}

/** Effective memory of the rollback bets' estimates, in blocks. */
export const RECENT_BLOCKS = 30
const DECAY = 1 - 1 / RECENT_BLOCKS
/** Prior pseudo-block for the plug-in estimates: mean 0 (no bet), second moment 1/4. */
const PRIOR_WEIGHT = 1
const PRIOR_SQUARE = 0.25
/** Largest fraction of the maximal bet ever staked: the wealth never loses more than 90 % in a block. */
const MAX_STAKE = 0.9

/** The canary's expected share of events when its per-request rate is `ratio` × stable's and it has `canaryShare` of the requests. */
export function eventShare(ratio: number, canaryShare: number): number {
  const weighted = ratio * canaryShare
  return weighted / (weighted + 1 - canaryShare)
}

/** The rate ratio that gives the canary `share` of the events when it has `canaryShare` of the requests (inverse of eventShare). */
export function ratioOfShare(share: number, canaryShare: number): number {
  if (share >= 1) return Number.POSITIVE_INFINITY
  return (share * (1 - canaryShare)) / (canaryShare * (1 - share))
}

/** How much worse than stable the canary may be: at most `ratio` × stable's rate or stable's rate + `points` percentage points, whichever is larger. */
export interface Tolerance {
  readonly ratio: number
  readonly points: number
}

/** The largest tolerated canary rate when stable's rate is `stableRate`. */
export function toleratedRate(tolerance: Tolerance, stableRate: number): number {
  return Math.max(tolerance.ratio * stableRate, stableRate + tolerance.points / 100)
}

/** Stable's rate from its history, with half an event of smoothing so that no events does not mean rate 0. */
export function smoothedRate(events: number, requests: number): number {
  return (events + 0.5) / (requests + 1)
}

/** The largest tolerated canary/stable rate ratio at stable's rate (the absolute allowance as a ratio). */
export function toleratedRatio(tolerance: Tolerance, stableRate: number): number {
  return toleratedRate(tolerance, stableRate) / stableRate
}

/** One block: events and requests per version. */
export interface BlockCounts {
  readonly canaryEvents: number
  readonly stableEvents: number
  readonly canaryRequests: number
  readonly stableRequests: number
}

/**
 * Adds one block to the four bets; `seed` (the block's start time) seeds the block's virtual
 * events, so the result is a pure function of the inputs.
 *
 * The tolerance "at most ratio × stable's rate or stable's rate + points" is the union of two
 * hypotheses, each judged on the canary's share of the block's events:
 * - ratio: the canary's share against θ(ratio);
 * - points: stable's events are joined by virtual events ~ Poisson(stable requests × points/100),
 *   which makes stable's rate p_s + points, and the canary's share is judged against θ(1) = w.
 *   (Randomization, as in randomized exact tests: with p_s ≈ 0 the share of real events says
 *   nothing, the virtual ones carry the absolute allowance.)
 * A canary within the tolerance satisfies one of them, so rollback needs both rollback bets to
 * win (the smaller wealth counts); a canary worse than the tolerance violates both, so the pass
 * evidence is the mean of the two pass bets.
 */
export function betOnBlock(state: BetState, block: BlockCounts, tolerance: Tolerance, history: {readonly events: number; readonly requests: number}, seed: number): BetState {
  if (block.canaryRequests <= 0 || block.stableRequests <= 0) return state
  const canaryShare = block.canaryRequests / (block.canaryRequests + block.stableRequests)
  const virtual = poisson(block.stableRequests * (tolerance.points / 100), mulberry32(seed))
  const stableRate = smoothedRate(history.events, history.requests)
  // Ratio part: "canary like stable" (share w) is the pass bet's alternative.
  const ratio = bet(block.canaryEvents, block.stableEvents, eventShare(tolerance.ratio, canaryShare), canaryShare, state.recentSum, state.recentSquares)
  // Points part: against stable + virtual events the null share is w; the alternative is a canary
  // at stable's rate (from its history), whose share among real and virtual events is lower.
  const alternative = (block.canaryRequests * stableRate) / (block.canaryRequests * stableRate + block.stableRequests * (stableRate + tolerance.points / 100))
  const points = bet(block.canaryEvents, block.stableEvents + virtual, canaryShare, alternative, state.absoluteSum, state.absoluteSquares)
  const events = block.canaryEvents + block.stableEvents
  return {
    logWealthRollback: state.logWealthRollback + ratio.rollback,
    logWealthPass: state.logWealthPass + ratio.pass,
    logWealthRollbackAbsolute: state.logWealthRollbackAbsolute + points.rollback,
    logWealthPassAbsolute: state.logWealthPassAbsolute + points.pass,
    recentSum: ratio.sum,
    recentSquares: ratio.squares,
    absoluteSum: points.sum,
    absoluteSquares: points.squares,
    blocks: state.blocks + (events > 0 ? 1 : 0),
    canaryEvents: state.canaryEvents + block.canaryEvents,
    stableEvents: state.stableEvents + block.stableEvents,
    expectedCanaryEvents: state.expectedCanaryEvents + events * canaryShare,
  }
}

/**
 * One block of one pair of bets on the canary's share of `canaryEvents + otherEvents` against
 * the null share `tolerated`: the rollback bet with a plug-in stake from the recent sums, the pass
 * bet as the likelihood ratio of share `alternative` against `tolerated` (Wald's SPRT, event by
 * event). No events: nothing changes.
 */
function bet(canaryEvents: number, otherEvents: number, tolerated: number, alternative: number, sum: number, squares: number): {rollback: number; pass: number; sum: number; squares: number} {
  const events = canaryEvents + otherEvents
  if (events <= 0 || tolerated <= 0 || tolerated >= 1) return {rollback: 0, pass: 0, sum, squares}
  const x = canaryEvents / events - tolerated
  const rollbackStake = clamp(plugIn(sum, squares), 0, MAX_STAKE / tolerated)
  const passStake = clamp((tolerated - alternative) / (tolerated * (1 - tolerated)), 0, MAX_STAKE / (1 - tolerated))
  return {rollback: Math.log1p(rollbackStake * x), pass: Math.log1p(-passStake * x), sum: sum * DECAY + x, squares: squares * DECAY + x * x}
}

/**
 * mulberry32: uniform numbers in [0, 1) from a 32-bit `seed`, small and reproducible. The core uses
 * it for a block's virtual events; the benchmark and the tests use it for seeded simulations.
 */
export function mulberry32(seed: number): () => number {
  let a = Math.floor(seed) >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Poisson(mean) by inversion (means here are small: stable requests in a block × the points allowance). */
export function poisson(mean: number, uniform: () => number): number {
  if (!(mean > 0)) return 0
  if (mean > 500) return Math.max(0, Math.round(mean + Math.sqrt(mean) * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())))
  let k = 0
  let p = Math.exp(-mean)
  let cumulative = p
  const u = uniform()
  while (u > cumulative && k < 10_000) {
    k++
    p *= mean / k
    cumulative += p
  }
  return k
}

/** λ = mean / second moment of past x (the growth-rate-optimal bet to second order), with a neutral prior. */
function plugIn(sum: number, squares: number): number {
  // mean / second moment = (Σx / (w + w0)) / ((Σx² + w0·s0) / (w + w0)); the weights cancel.
  return sum / (squares + PRIOR_WEIGHT * PRIOR_SQUARE)
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value))
}

/** ln((e^a + e^b) / 2): the two bets of one side averaged (an average of e-processes for one null is one). */
export function logMeanOfTwo(a: number, b: number): number {
  const top = Math.max(a, b)
  return top + Math.log((Math.exp(a - top) + Math.exp(b - top)) / 2)
}

/** ln of the rollback evidence: the smaller of the ratio and points bets (a canary within the tolerance is within one of them). */
export function logRollbackEvidence(state: BetState): number {
  return Math.min(state.logWealthRollback, state.logWealthRollbackAbsolute)
}

/** ln of the pass evidence: the ratio and points bets averaged (a canary worse than the tolerance is worse than both). */
export function logPassEvidence(state: BetState): number {
  return logMeanOfTwo(state.logWealthPass, state.logWealthPassAbsolute)
}

/**
 * The canary/stable rate ratio estimated from the events so far (canary events over the canary
 * events expected at equal rates, against the same for stable), or null without events.
 */
export function estimatedRatio(state: BetState): number | null {
  const expectedStable = state.canaryEvents + state.stableEvents - state.expectedCanaryEvents
  if (state.expectedCanaryEvents <= 0 || expectedStable <= 0 || state.canaryEvents + state.stableEvents === 0) return null
  if (state.stableEvents === 0) return Number.POSITIVE_INFINITY
  return (state.canaryEvents / state.expectedCanaryEvents) / (state.stableEvents / expectedStable)
}
