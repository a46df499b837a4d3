/**
 * The rollout's vocabulary: plan, state, observation, intent, actions. Pure data, no I/O.
 * The reducer in `decide.ts` maps (state, observation, plan) to (next state, actions).
 */
import type {Evidence, Tolerance} from './evidence.js'
import type {WindowMetrics} from './metrics.js'
import type {Weights} from './weights.js'

/** One step of the plan (same shape as the release spec's `Step`): move traffic, or wait. */
export type Step =
  | {readonly kind: 'setWeight'; readonly weight: number}
  | {readonly kind: 'pause'; readonly durationMs?: number}

/** How the canary is judged; the fields mirror the release spec's `analysis` block. */
export interface AnalysisPolicy {
  /** Time between two looks at the metrics. */
  readonly intervalMs: number
  /** Canary requests needed at a weight before the step may pass; fewer is Inconclusive, never Failed. */
  readonly minRequests: number
  /** Guard: minimum share of non-5xx canary responses, in percent; not checked when absent. */
  readonly successRatePercent?: number
  /** Guard: maximum canary p99 latency, judged at a histogram bucket bound; not checked when absent. */
  readonly latencyP99Ms?: number
  /** A guard must be broken by the canary alone this many looks in a row (at least 1) before the canary fails. */
  readonly failureLimit: number
  /** How long the canary may take to become ready before the rollout gives up. */
  readonly progressDeadlineMs: number
  /** How long one weight may wait for the evidence to pass before the verdict is Inconclusive (default DEFAULT_DEADLINE_MS). */
  readonly deadlineMs?: number
  /** Canary requests at one weight after which the verdict is Inconclusive if the evidence has not passed; no limit when absent. */
  readonly deadlineRequests?: number
  /** What an Inconclusive deadline does: roll back (`abort`, default) or keep the weight and keep judging (`hold`). */
  readonly onInconclusive?: 'abort' | 'hold'
  /** How much worse than stable the canary's error rate may be (default DEFAULT_ERROR_TOLERANCE). */
  readonly errorTolerance?: Tolerance
  /** How much larger than stable's the canary's share of slow requests may be (default DEFAULT_LATENCY_TOLERANCE). */
  readonly latencyTolerance?: Tolerance
  /** Probability, over the whole rollout, of rolling back a canary within the tolerance. */
  readonly maxFalsePositiveRate: number
  /** Probability of passing a canary worse than the tolerance (default DEFAULT_MAX_FALSE_PASS_RATE). */
  readonly maxFalsePassRate?: number
}

/** Everything `decide` needs to know about the release that does not change during a rollout. */
export interface Plan {
  readonly steps: readonly Step[]
  /** Denominator of every weight (100 unless the spec asks for finer steps). */
  readonly totalWeight: number
  readonly analysis: AnalysisPolicy
}

/** Where a rollout is. Exactly one phase at a time; see `TERMINAL_PHASES`. */
export type Phase =
  /** The canary is being deployed; it gets no traffic until it is ready. */
  | 'Starting'
  /** Following the plan: the canary gets its step's weight and is judged every interval. */
  | 'Progressing'
  /** Stopped at an indefinite pause; waits for `canary step` or `canary promote`. */
  | 'Paused'
  /** Decided to promote: all traffic to the canary, then the canary becomes the stable version. */
  | 'Promoting'
  /** Decided to stop (see `endReason`): all traffic back to stable, then the canary is removed. */
  | 'RollingBack'
  /** Done: the canary's image is the stable version and takes all traffic. */
  | 'Promoted'
  /** Done: analysis failed; stable takes all traffic and the canary was removed. */
  | 'RolledBack'
  /** Done: a user aborted; stable takes all traffic and the canary was removed. */
  | 'Aborted'
  /** Done: not enough data to judge by the deadline; stable takes all traffic, the canary was removed. */
  | 'Inconclusive'
  /** Done: the canary never became ready; it was removed and never got traffic. */
  | 'Failed'

/** Phases a rollout never leaves; a new `start` may begin after one of them. */
export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set<Phase>(['Promoted', 'RolledBack', 'Aborted', 'Inconclusive', 'Failed'])

/** The terminal phases, as a type. */
export type TerminalPhase = 'Promoted' | 'RolledBack' | 'Aborted' | 'Inconclusive' | 'Failed'

/** True when the rollout is over. */
export function isTerminal(phase: Phase): phase is TerminalPhase {
  return TERMINAL_PHASES.has(phase)
}

/** Why a rollout is rolling back; decides which terminal phase it ends in. */
export type EndReason = 'analysis' | 'aborted' | 'inconclusive' | 'notReady'

/** Four-valued outcome of a check or a look (Argo's analysis phases). */
export type Verdict = 'Successful' | 'Failed' | 'Inconclusive' | 'Error'

/** What a check measures. */
export type CheckKind = 'requests' | 'ready' | 'successRate' | 'latencyP99' | 'errorRateVsStable' | 'latencyVsStable' | 'stableBaseline'

/** One measurement of a look, with the numbers the verdict used (shown by `status` and in the decision log). */
export interface Measurement {
  readonly check: CheckKind
  /**
   * The canary's value: requests, success rate in percent, p99 in ms, error rate in percent, or
   * (latencyVsStable) percent of requests slower than `boundMs`.
   */
  readonly value: number | null
  /** The same measurement for stable over the same window, when there is one. */
  readonly stableValue?: number | null
  /** The configured threshold (min requests, min success %, max p99 ms). */
  readonly threshold?: number
  /** The confidence bound compared with the threshold (upper bound of success %, lower bound of share over the latency limit). */
  readonly bound?: number | null
  /** Latency checks: the histogram bucket bound actually used, in ms (a guard between two bounds is judged at the lower one). */
  readonly boundMs?: number | null
  /** Guards: the same guard judged on stable; true when stable breaks it too (common mode: hold, not roll back). */
  readonly stableBreaks?: boolean
  /** Comparisons with stable: the estimated canary/stable rate ratio and a 95 % interval (for reading; the verdict uses the evidence). */
  readonly ratio?: number | null
  readonly ratioInterval?: {readonly lower: number; readonly upper: number | null} | null
  /** Comparisons with stable: the largest ratio within the tolerance now. */
  readonly toleratedRatio?: number
  /** Comparisons with stable: the evidence so far (e-values) and how much rolls back or passes the canary. */
  readonly evidence?: {readonly rollback: number; readonly rollbackNeeded: number; readonly pass: number; readonly passNeeded: number; readonly blocks: number}
  readonly verdict: Verdict
  /** One line saying why, for humans. */
  readonly note: string
}

/** The result of one look at the metrics. */
export interface AnalysisResult {
  /** 1-based look number within the rollout. */
  readonly look: number
  readonly atMs: number
  /** Start of the window judged (when the current weight was set). */
  readonly windowStartMs: number
  readonly canaryWeight: number
  readonly verdict: Verdict
  readonly measurements: readonly Measurement[]
}

/** Readiness of the canary, as the core sees it. */
export interface CanaryReadiness {
  readonly ready: boolean
  readonly readyReplicas: number
  readonly replicas: number
  readonly reason?: string
  /** The target knows the canary will not become ready (crash loop, deadline). */
  readonly failed?: boolean
}

/** What a user asked for with `canary step`, `promote` or `abort`. */
export type Intent =
  | {readonly kind: 'step'; readonly weight?: number; readonly force: boolean}
  | {readonly kind: 'promote'; readonly force: boolean}
  | {readonly kind: 'abort'}

/** What the engine saw this tick. Absent fields were not observed. */
export interface Observation {
  readonly nowMs: number
  readonly intent?: Intent
  readonly canary?: CanaryReadiness
  /** Weights read back from the router: the only truth about the split. */
  readonly weights?: Weights
  /** Metrics over the window since the current weight was set, or why they could not be read. */
  readonly metrics?: WindowMetrics | {readonly error: string}
}

/** One side effect for the engine to execute, in order. */
export type Action =
  | {readonly type: 'reconcileRouter'}
  | {readonly type: 'deployCanary'; readonly image: string}
  | {readonly type: 'setWeights'; readonly weights: Weights}
  | {readonly type: 'promoteTarget'; readonly image: string}
  | {readonly type: 'finalizeRouter'; readonly outcome: 'promoted' | 'aborted'}
  | {readonly type: 'removeCanary'}

/** What happened, in the decision log. */
export type DecisionEvent =
  | 'started'
  | 'deployed'
  | 'ready'
  | 'weightSet'
  | 'weightCorrected'
  | 'analysis'
  | 'stepAdvanced'
  | 'paused'
  | 'holding'
  | 'refused'
  | 'promoting'
  | 'rollingBack'
  | 'finished'

/** One entry of the decision log, with the numbers the decision used. */
export interface DecisionLogEntry {
  readonly atMs: number
  readonly event: DecisionEvent
  readonly message: string
  readonly phase: Phase
  readonly stepIndex: number
  readonly canaryWeight: number
  readonly analysis?: AnalysisResult
}

/** The persisted state of one rollout. The current weight is derived (see `desiredWeight`), never stored. */
export interface RolloutState {
  readonly name: string
  readonly phase: Phase
  readonly stableImage: string
  readonly canaryImage: string
  readonly startedAtMs: number
  readonly updatedAtMs: number
  /** When `deployCanary` was issued; undefined until then. */
  readonly deployedAtMs?: number
  /** Index of the plan step in effect; `steps.length` once every step is done. */
  readonly stepIndex: number
  readonly stepStartedAtMs: number
  /** A weight set by `canary step --weight`, in force until the plan advances. */
  readonly weightOverride?: number
  /** When the current weight was set: the analysis window starts here. */
  readonly windowStartMs: number
  /** Looks taken so far in this rollout (each spends part of the false-positive budget). */
  readonly looks: number
  /** Consecutive looks with a guard broken by the canary alone. */
  readonly consecutiveBreaches: number
  /** The judge's evidence over the whole rollout (carried across looks and weight changes). */
  readonly evidence?: Evidence
  /** Set when the deadline passed at the current weight and `onInconclusive` is `hold`. */
  readonly holdingSinceMs?: number
  readonly lastAnalysis?: AnalysisResult
  /** Why the rollout is rolling back or ended that way. */
  readonly endReason?: EndReason
  /** Human-readable cause of the end, e.g. the failing measurement. */
  readonly endMessage?: string
  readonly decisions: readonly DecisionLogEntry[]
}

/** Why a manual command was refused; the service maps it to an exit code. */
export type Refusal =
  | {readonly kind: 'analysisFailing'; readonly message: string}
  | {readonly kind: 'notEnoughData'; readonly message: string}
  | {readonly kind: 'notInProgress'; readonly message: string}
  | {readonly kind: 'invalidWeight'; readonly message: string}

/** The reducer's answer: the next state, the side effects in order, and whether to tick again at once. */
export interface Decision {
  readonly next: RolloutState
  readonly actions: readonly Action[]
  /** Tick again without waiting (a phase changed and has follow-up work). */
  readonly immediate: boolean
  /** Set when an intent was refused; the state records the refusal too. */
  readonly refusal?: Refusal
}
