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
  /** ln of the rollback bet's wealth (evidence that the canary is worse than the tolerance). */
  readonly logWealthRollback: number
  /** ln of the pass bet's wealth (evidence that the canary is within the tolerance). */
  readonly logWealthPass: number
  /** Exponentially weighted sums of x and x² over recent blocks (rollback bet). */
  readonly recentSum: number
  readonly recentSquares: number
  /** Sums of x and x² over all blocks (pass bet). */
  readonly totalSum: number
  readonly totalSquares: number
  /** Blocks with at least one event. */
  readonly blocks: number
  /** Events (clumps counted by size) per version, over all blocks. */
  readonly canaryEvents: number
  readonly stableEvents: number
  /** Σ n_b·w_b: the canary events expected if both versions had the same rate. */
  readonly expectedCanaryEvents: number
}

/** A bet before any block. */
export const NO_BETS: BetState = {logWealthRollback: 0, logWealthPass: 0, recentSum: 0, recentSquares: 0, totalSum: 0, totalSquares: 0, blocks: 0, canaryEvents: 0, stableEvents: 0, expectedCanaryEvents: 0}

/** Effective memory of the rollback bet's estimate, in blocks with events. */
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

/** One block: events and requests per version. */
export interface BlockCounts {
  readonly canaryEvents: number
  readonly stableEvents: number
  readonly canaryRequests: number
  readonly stableRequests: number
}

/**
 * Adds one block to the bets, with `toleratedRatio` the largest canary/stable rate ratio that
 * is within the tolerance for this block (computed from earlier blocks only). A block without
 * events, or without requests on either side, carries no information and changes nothing.
 */
export function betOnBlock(state: BetState, block: BlockCounts, toleratedRatio: number): BetState {
  const events = block.canaryEvents + block.stableEvents
  const requests = block.canaryRequests + block.stableRequests
  if (events <= 0 || block.canaryRequests <= 0 || block.stableRequests <= 0) return state
  const canaryShare = block.canaryRequests / requests
  const tolerated = eventShare(toleratedRatio, canaryShare)
  const x = block.canaryEvents / events - tolerated
  const rollbackStake = clamp(plugIn(state.recentSum, state.recentSquares), 0, MAX_STAKE / tolerated)
  // The pass bet is the likelihood ratio of "canary like stable" (share w) against the tolerance
  // (share θ'), event by event: Wald's SPRT, growth-optimal against a canary as good as stable.
  const passStake = Math.min((tolerated - canaryShare) / (tolerated * (1 - tolerated)), MAX_STAKE / (1 - tolerated))
  return {
    logWealthRollback: state.logWealthRollback + Math.log1p(rollbackStake * x),
    logWealthPass: state.logWealthPass + Math.log1p(-passStake * x),
    recentSum: state.recentSum * DECAY + x,
    recentSquares: state.recentSquares * DECAY + x * x,
    totalSum: state.totalSum + x,
    totalSquares: state.totalSquares + x * x,
    blocks: state.blocks + 1,
    canaryEvents: state.canaryEvents + block.canaryEvents,
    stableEvents: state.stableEvents + block.stableEvents,
    expectedCanaryEvents: state.expectedCanaryEvents + events * canaryShare,
  }
}

/** λ = mean / second moment of past x (the growth-rate-optimal bet to second order), with a neutral prior. */
function plugIn(sum: number, squares: number): number {
  // mean / second moment = (Σx / (w + w0)) / ((Σx² + w0·s0) / (w + w0)); the weights cancel.
  return sum / (squares + PRIOR_WEIGHT * PRIOR_SQUARE)
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value))
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
