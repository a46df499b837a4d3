/**
 * The rollout's vocabulary: plan, state, observation, intent, actions. Pure data, no I/O.
 * The reducer in `decide.ts` maps (state, observation, plan) to (next state, actions).
 */
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
  /** Canary requests needed in the window before it is judged; fewer is Inconclusive, never Failed. */
  readonly minRequests: number
  /** Minimum share of non-5xx canary responses, in percent; not checked when absent. */
  readonly successRatePercent?: number
  /** Maximum canary p99 latency; not checked when absent. */
  readonly latencyP99Ms?: number
  /** Threshold checks must be broken this many looks in a row (at least 1) before the canary fails. */
  readonly failureLimit: number
  /** How long the canary may take to become ready before the rollout gives up. */
  readonly progressDeadlineMs: number
  /** How long one weight may wait for enough data before the rollout ends Inconclusive (default 10 intervals). */
  readonly deadlineMs?: number
  /** Probability, over the whole rollout, of failing a canary that is as good as stable and meets the thresholds. */
  readonly maxFalsePositiveRate: number
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
export type CheckKind = 'requests' | 'ready' | 'successRate' | 'latencyP99' | 'errorRateVsStable'

/** One measurement of a look, with the numbers the verdict used (shown by `status` and in the decision log). */
export interface Measurement {
  readonly check: CheckKind
  /** The canary's value: requests, success rate in percent, p99 in ms, or error rate in percent. */
  readonly value: number | null
  /** The same measurement for stable over the same window, when there is one. */
  readonly stableValue?: number | null
  /** The configured threshold (min requests, min success %, max p99 ms). */
  readonly threshold?: number
  /** The confidence bound compared with the threshold (upper bound of success %, lower bound of share over the latency limit). */
  readonly bound?: number | null
  /** One-sided p-value of "canary errors more often than stable". */
  readonly pValue?: number | null
  /** Error probability spent on this check at this look. */
  readonly alpha?: number
  /** Set on the checks of the recent window (the last few intervals); absent for the step's whole window. */
  readonly window?: {readonly kind: 'recent'; readonly sinceMs: number}
  readonly verdict: Verdict
  /** One line saying why, for humans. */
  readonly note: string
}

/** The result of one look at the metrics. */
export interface AnalysisResult {
  /** 1-based look number within the rollout (alpha spending counts it). */
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
  /** Metrics over the recent window (`recentWindowMs`), read when the step has lasted longer than it. */
  readonly recentMetrics?: WindowMetrics | {readonly error: string}
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
  /** Consecutive looks with a broken threshold. */
  readonly consecutiveBreaches: number
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
