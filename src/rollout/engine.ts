/**
 * The one rollout loop: observe (target readiness, router weights read back, metrics over the
 * window, an optional intent) → `decide` → execute the actions in order → save the state with
 * optimistic concurrency. The automatic controller (`canary run`) calls `run`; manual commands call
 * `tick` once with their intent. Time and cancellation are parameters (Clock, AbortSignal).
 *
 * The save rule: a decision is saved when it acts or changes what the next decision depends on
 * (phase, step, window, looks, verdicts, the log). A decision that only adds this tick's reading to
 * the judge's evidence is kept in memory and saved with the next such change (every look, at the
 * latest) or after EVIDENCE_SAVE_INTERVAL_MS: `run` used to write the state every tick (~1 write
 * per second), and a step to the weight already set wrote too.
 * Losing unsaved evidence (a crash, or another command saving first) costs only a re-read: every
 * reading is cumulative since the weight was set and the evidence keeps the last one it used, so
 * the next reading's difference carries the lost span into the next block. Evidence is only ever
 * collected again, never invented: a lost save can delay a verdict, not make one.
 */
import {ConflictError, NotFoundError, UnreachableError, isCanaryError, messageOf} from '../errors.js'
import {decide} from './core/decide.js'
import type {WindowMetrics} from './core/metrics.js'
import {desiredWeight, desiredWeights} from './core/plan.js'
import {isTerminal, type Action, type Decision, type Intent, type Observation, type Plan, type RolloutState} from './core/types.js'
import type {Clock, MetricSource, OperationLock, RolloutStore, Target, TrafficRouter} from './ports.js'
import {assertNever} from './core/assert-never.js'

/** What the engine drives. */
export interface EngineDeps {
  readonly plan: Plan
  readonly router: TrafficRouter
  readonly target: Target
  readonly metrics: MetricSource
  readonly store: RolloutStore<RolloutState>
  readonly clock: Clock
  readonly lock?: OperationLock
  /** Called after every decision is executed and saved (progress output). */
  readonly onTick?: (tick: TickResult) => void
}

/** One executed decision. */
export interface TickResult {
  readonly state: RolloutState
  readonly version: string
  readonly observation: Observation
  readonly decision: Decision
}

/** How `run` ended. */
export type RunOutcome = 'terminal' | 'paused' | 'deadline'

/** The result of `run`. */
export interface RunResult {
  readonly outcome: RunOutcome
  readonly state: RolloutState
}

/** The signal of a decision's actions and commit: never aborted (see `step`). */
const UNINTERRUPTIBLE = new AbortController().signal

/** How long a tick waits for another process's lock before giving up (manual commands use 0). */
const RUN_LOCK_WAIT_MS = 5000

/** Longest time evidence gathered between looks stays unsaved (it is saved at every look anyway). */
export const EVIDENCE_SAVE_INTERVAL_MS = 30_000

/** A decided state not saved yet (only its evidence differs from the stored one), and the stored version it builds on. */
interface UnsavedEvidence {
  readonly state: RolloutState
  readonly version: string
  /** When the first unsaved reading was added. */
  readonly sinceMs: number
}

/** The rollout loop over one release's ports (see the file comment). */
export class RolloutEngine {
  private unsaved: UnsavedEvidence | undefined

  constructor(private readonly deps: EngineDeps) {}

  /** Ticks between observations: often enough to react within a fraction of an interval. */
  get tickMs(): number {
    return Math.min(1000, Math.max(50, Math.floor(this.deps.plan.analysis.intervalMs / 4)))
  }

  /**
   * Observe, decide, execute, save; repeated while the decision asks for an immediate follow-up
   * (e.g. RollingBack → RolledBack). Returns the first decision that carried the intent, with the final state.
   */
  async tick(signal: AbortSignal, intent?: Intent, lockWaitMs = 0): Promise<TickResult> {
    const release = this.deps.lock === undefined ? undefined : await this.deps.lock.acquire(lockWaitMs, signal)
    try {
      let result = await this.step(signal, intent)
      const first = result
      while (result.decision.immediate) result = await this.step(signal, undefined)
      return {...result, decision: first.decision}
    } finally {
      await release?.()
    }
  }

  /** Ticks until the rollout ends, stops at an indefinite pause (when `stopAtPause`), or the deadline passes. */
  async run(options: {readonly signal: AbortSignal; readonly deadlineMs?: number; readonly stopAtPause?: boolean}): Promise<RunResult> {
    for (;;) {
      const {state} = await this.tick(options.signal, undefined, RUN_LOCK_WAIT_MS)
      if (isTerminal(state.phase)) return {outcome: 'terminal', state}
      if (state.phase === 'Paused' && options.stopAtPause !== false) return {outcome: 'paused', state}
      if (options.deadlineMs !== undefined && this.deps.clock.now() >= options.deadlineMs) return {outcome: 'deadline', state}
      const untilDeadline = options.deadlineMs === undefined ? this.tickMs : Math.max(0, Math.min(this.tickMs, options.deadlineMs - this.deps.clock.now()))
      await this.deps.clock.sleep(untilDeadline, options.signal)
    }
  }

  private async step(signal: AbortSignal, intent: Intent | undefined): Promise<TickResult> {
    const {store, plan} = this.deps
    const loaded = await store.load(signal)
    if (loaded === undefined) {
      throw new NotFoundError('rollout state: not found', {suggestions: ['Start a rollout with `canary start NAME --image REF` or `canary run`.']})
    }
    // Our unsaved evidence counts only while nobody else saved: otherwise the stored state wins.
    const unsaved = this.unsaved?.version === loaded.version ? this.unsaved : undefined
    this.unsaved = undefined
    const current = unsaved?.state ?? loaded.value
    const observation = await this.observe(current, signal, intent)
    const decision = decide(current, observation, plan)
    let result: TickResult = {state: current, version: loaded.version, observation, decision}
    const unsavedSinceMs = unsaved?.sinceMs ?? observation.nowMs
    const evidenceOnly = decision.actions.length === 0 && onlyEvidenceDiffers(current, decision.next)
    if (decision.next === current) {
      this.unsaved = unsaved
    } else if (evidenceOnly && observation.nowMs - unsavedSinceMs < EVIDENCE_SAVE_INTERVAL_MS) {
      this.unsaved = {state: decision.next, version: loaded.version, sinceMs: unsavedSinceMs}
      result = {...result, state: decision.next}
    } else {
      // Stage, act, commit. Staging writes the next state beside the current one and checks its
      // version, so a state that cannot be saved (disk full, read-only, permissions, a lost race)
      // stops the tick before the world changes. Acting before the commit keeps the old promise:
      // every action is idempotent, so a crash in between only repeats them on the next tick,
      // while the saved phase never claims work that was not done.
      // The point of no return: an interrupt that came before it stops the tick with nothing done.
      signal.throwIfAborted()
      const staged = await store.stage(decision.next, loaded.version, signal)
      // From here the decision is carried out and committed even when the command is interrupted
      // (Ctrl-C): stopping between acting and committing would leave the world ahead of the saved
      // state. Each action is bounded by its own timeouts; a second Ctrl-C still kills the process,
      // and then the next tick repeats the idempotent actions.
      const acting = UNINTERRUPTIBLE
      try {
        for (const action of decision.actions) await this.execute(action, acting)
      } catch (error) {
        await staged.discard()
        throw error
      }
      let saved
      try {
        saved = await staged.commit(acting)
      } catch (error) {
        await this.undo(decision, observation, error, acting)
        throw error
      }
      result = {...result, state: saved.value, version: saved.version}
    }
    this.deps.onTick?.(result)
    return result
  }

  /** Everything `decide` needs this tick; router and target failures mean the release is unreachable. */
  private async observe(state: RolloutState, signal: AbortSignal, intent: Intent | undefined): Promise<Observation> {
    const {target, metrics, clock, plan} = this.deps
    const nowMs = clock.now()
    const base = {nowMs, ...(intent === undefined ? {} : {intent})}
    if (isTerminal(state.phase)) return base
    if (state.phase === 'Promoting' || state.phase === 'RollingBack') return {...base, weights: await this.readWeights(signal)}
    if (state.deployedAtMs === undefined) return base
    const canary = await guard(() => target.readiness('canary', signal), `${target.kind} target: reading canary readiness failed`)
    if (state.phase === 'Starting') return {...base, canary}
    const weights = await this.readWeights(signal)
    const observation: Observation = {...base, canary, weights}
    if (desiredWeight(state, plan) === 0) return observation
    const read = async (sinceMs: number): Promise<WindowMetrics | {error: string}> => {
      try {
        return await metrics.read({sinceMs, untilMs: nowMs}, signal)
      } catch (error) {
        if (signal.aborted) throw error
        return {error: messageOf(error)}
      }
    }
    // Every tick reads the window since the weight was set; the judge turns the new part of each
    // reading into a time block of evidence (src/rollout/core/evidence.ts).
    return {...observation, metrics: await read(state.windowStartMs)}
  }

  /**
   * The commit failed after the actions ran (rare: staging already wrote the file or checked the
   * version). Lost race: another command saved first and had finished acting, so route as its
   * saved state says (putting back the weights read before acting would undo the winner's step).
   * Otherwise put the traffic back where the saved state has it, as read before acting. Best
   * effort; the next tick corrects the weights from the saved state anyway.
   */
  private async undo(decision: Decision, observation: Observation, error: unknown, signal: AbortSignal): Promise<void> {
    if (!decision.actions.some((a) => a.type === 'setWeights')) return
    if (error instanceof ConflictError) {
      const saved = await this.deps.store.load(signal).catch(() => undefined)
      if (saved !== undefined && (saved.value.phase === 'Progressing' || saved.value.phase === 'Paused')) {
        await this.deps.router.setWeights(desiredWeights(saved.value, this.deps.plan), signal).catch(() => undefined)
        return
      }
    }
    if (observation.weights === undefined) return
    await this.deps.router.setWeights(observation.weights, signal).catch(() => undefined)
  }

  private readWeights(signal: AbortSignal) {
    return guard(() => this.deps.router.getWeights(signal), `${this.deps.router.kind} router: reading weights failed`)
  }

  private async execute(action: Action, signal: AbortSignal): Promise<void> {
    const {router, target} = this.deps
    switch (action.type) {
      case 'reconcileRouter':
        return router.reconcile(signal)
      case 'deployCanary':
        return target.deployCanary(action.image, signal)
      case 'setWeights':
        return router.setWeights(action.weights, signal)
      case 'promoteTarget':
        return target.promote(action.image, signal)
      case 'finalizeRouter':
        return router.finalize(action.outcome, signal)
      case 'removeCanary':
        return target.removeCanary(signal)
      default:
        return assertNever(action)
    }
  }
}

/**
 * True when `next` differs from `current` in the judge's evidence only. Fields are compared by
 * identity (the reducer keeps what it does not change), so a doubt always means "save".
 */
function onlyEvidenceDiffers(current: RolloutState, next: RolloutState): boolean {
  const keys = new Set([...Object.keys(current), ...Object.keys(next)] as (keyof RolloutState)[])
  for (const key of keys) {
    if (key !== 'evidence' && current[key] !== next[key]) return false
  }
  return true
}

/** Runs `read`; a non-canary error becomes an UnreachableError naming what failed. */
async function guard<T>(read: () => Promise<T>, what: string): Promise<T> {
  try {
    return await read()
  } catch (error) {
    if (isCanaryError(error)) throw error
    throw new UnreachableError(`${what}: ${messageOf(error)}`, {cause: error})
  }
}
