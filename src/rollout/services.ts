/**
 * The use-cases behind the lifecycle commands: plain arguments in, typed results out (the `--json`
 * objects). Commands parse flags and render; everything else happens here, through the engine.
 */
import {AnalysisFailedError, ConflictError, InconclusiveError, NotFoundError, TimeoutError, UnreachableError, UsageError, type CanaryError, type ExitCode} from '../errors.js'
import {newRollout} from './core/decide.js'
import {desiredWeight} from './core/plan.js'
import {isTerminal, type AnalysisResult, type DecisionLogEntry, type Intent, type Phase, type Plan, type Refusal, type RolloutState} from './core/types.js'
import type {WindowMetrics} from './core/metrics.js'
import {canaryPercent, type Weights} from './core/weights.js'
import {RolloutEngine, type TickResult} from './engine.js'
import type {Clock, DownReport, RolloutPorts} from './ports.js'
import {assertNever} from './core/assert-never.js'
import {describeStep} from '../render/describe-step.js'

/** One release, ready to be driven. */
export interface RolloutSession {
  readonly name: string
  readonly plan: Plan
  /** The stable image from the spec (used when no earlier rollout promoted another one). */
  readonly specImage: string
  readonly ports: RolloutPorts
  readonly clock: Clock
  /** Progress callback for live output. */
  readonly onTick?: (tick: TickResult) => void
}

/** Requests and errors one version served in the window. */
export interface ObservedVersion {
  readonly requests: number
  readonly errors: number
  /** Share of the window's requests, in percent. */
  readonly sharePercent: number | null
  /** Requests per second over the window. */
  readonly ratePerSecond: number | null
}

/** `canary status --json` and the result of every lifecycle command (stable; documented in docs/rollout.md). */
export interface RolloutStatus {
  readonly name: string
  readonly phase: Phase
  readonly terminal: boolean
  /** Exit code `status --wait` ends with for this phase (null while it is not terminal). */
  readonly exitCode: number | null
  /** 1-based step in effect, and the number of steps. */
  readonly step: {readonly index: number; readonly count: number; readonly description: string}
  /** Canary weight the router reports (read back), or null when it could not be read. */
  readonly canaryWeight: number | null
  /** Canary weight the plan wants now. */
  readonly plannedWeight: number
  readonly totalWeight: number
  readonly stable: {readonly image: string}
  readonly canary: {readonly image: string}
  readonly proxy: {readonly url: string | null}
  /** Traffic each version served since the current weight was set. */
  readonly observed: {readonly sinceMs: number; readonly untilMs: number; readonly stable: ObservedVersion; readonly canary: ObservedVersion} | null
  readonly analysis: AnalysisResult | null
  readonly endReason: string | null
  readonly message: string | null
  readonly startedAt: string
  readonly updatedAt: string
  readonly decisions: readonly (DecisionLogEntry & {readonly at: string})[]
}

/** Exit code of a terminal phase (README "Exit codes"). */
export function exitCodeFor(phase: Phase): ExitCode | null {
  switch (phase) {
    case 'Promoted':
      return 0
    case 'RolledBack':
      return 10
    case 'Aborted':
      return 11
    case 'Inconclusive':
      return 13
    case 'Failed':
      return 14
    case 'Paused':
      return 12
    case 'Starting':
    case 'Progressing':
    case 'Promoting':
    case 'RollingBack':
      return null
    default:
      return assertNever(phase)
  }
}

/** How long `start` waits for another operation on the release before giving up (exit 5). */
const START_LOCK_WAIT_MS = 5000

function engineOf(session: RolloutSession): RolloutEngine {
  const {router, target, metrics, store, lock} = session.ports
  return new RolloutEngine({plan: session.plan, router, target, metrics, store, clock: session.clock, ...(lock === undefined ? {} : {lock}), ...(session.onTick === undefined ? {} : {onTick: session.onTick})})
}

async function loadState(session: RolloutSession, signal: AbortSignal): Promise<RolloutState | undefined> {
  return (await session.ports.store.load(signal))?.value
}

function noRollout(session: RolloutSession): NotFoundError {
  return new NotFoundError(`release ${session.name}: no rollout in progress`, {subject: session.name, suggestions: [`Start one with \`canary start ${session.name} --image REF\` or \`canary run ${session.name} --image REF\`.`]})
}

/** `canary start`: deploy the canary, wait until ready, move to the first step's weight. */
export async function startRollout(session: RolloutSession, input: {readonly canaryImage: string; readonly signal: AbortSignal}): Promise<RolloutStatus> {
  const engine = engineOf(session)
  // Check, start the data plane and save the new rollout under the operation lock: of two
  // simultaneous starts the loser exits 5 having changed nothing.
  const release = await session.ports.lock?.acquire(START_LOCK_WAIT_MS, input.signal)
  try {
    const stored = await session.ports.store.load(input.signal)
    if (stored !== undefined && !isTerminal(stored.value.phase)) {
      throw new ConflictError(`release ${session.name}: a rollout of ${stored.value.canaryImage} is in progress (${stored.value.phase})`, {
        subject: session.name,
        suggestions: ['Finish it with `canary promote` or `canary abort` first.', '`canary status` shows where it is.'],
      })
    }
    const stableImage = stored?.value.phase === 'Promoted' ? stored.value.stableImage : (stored?.value.stableImage ?? session.specImage)
    if (stableImage === input.canaryImage) {
      throw new UsageError(`release ${session.name}: ${input.canaryImage} is already the stable version`, {suggestions: ['Pass the new version with --image.']})
    }
    await session.ports.prepare(stableImage, input.signal)
    try {
      await session.ports.store.save(newRollout({name: session.name, stableImage, canaryImage: input.canaryImage, nowMs: session.clock.now()}), stored?.version, input.signal)
    } catch (error) {
      // Nothing was saved, so nothing may be left running either.
      await session.ports.undoPrepare?.(input.signal).catch(() => undefined)
      throw error
    }
  } finally {
    await release?.()
  }
  let state: RolloutState
  try {
    state = (await engine.tick(input.signal, undefined, 5000)).state
    while (state.phase === 'Starting') {
      await session.clock.sleep(Math.min(250, engine.tickMs), input.signal)
      state = (await engine.tick(input.signal, undefined, 5000)).state
    }
  } catch (error) {
    // Interrupted (Ctrl-C): the saved rollout stands, to be resumed by `run` or ended by `abort`.
    if (input.signal.aborted) throw error
    // Deploying failed (e.g. no upstream for the image): end the rollout and leave nothing running.
    await engine.tick(input.signal, {kind: 'abort'}, 5000).catch(() => undefined)
    await session.ports.undoPrepare?.(input.signal).catch(() => undefined)
    throw error
  }
  if (state.phase === 'Failed') {
    await session.ports.undoPrepare?.(input.signal)
    throw new TimeoutError(`release ${session.name}: start failed: ${state.endMessage ?? 'canary not ready'}`, {
      subject: session.name,
      suggestions: ['Check the canary\'s log under .canary/<release>/logs/.', 'The canary was stopped; nothing of it is left running.'],
    })
  }
  return statusOf(session, state, input.signal)
}

/** `canary step`: advance (or set `weight`) through the same decision code as the controller. */
export async function stepRollout(session: RolloutSession, input: {readonly weight?: number; readonly force: boolean; readonly wait: boolean; readonly timeoutMs?: number; readonly signal: AbortSignal}): Promise<RolloutStatus> {
  const intent: Intent = input.weight === undefined ? {kind: 'step', force: input.force} : {kind: 'step', weight: input.weight, force: input.force}
  return applyIntent(session, intent, input)
}

/** `canary promote`: the canary becomes stable (behind the same analysis gate unless forced). */
export async function promoteRollout(session: RolloutSession, input: {readonly force: boolean; readonly wait?: boolean; readonly timeoutMs?: number; readonly signal: AbortSignal}): Promise<RolloutStatus> {
  return applyIntent(session, {kind: 'promote', force: input.force}, {wait: input.wait ?? false, ...input})
}

/** `canary abort`: all traffic back to stable at once, canary stopped. Idempotent. */
export async function abortRollout(session: RolloutSession, input: {readonly signal: AbortSignal}): Promise<RolloutStatus> {
  const state = await loadState(session, input.signal)
  if (state === undefined) throw noRollout(session)
  if (isTerminal(state.phase)) return statusOf(session, state, input.signal)
  return applyIntent(session, {kind: 'abort'}, {wait: false, signal: input.signal})
}

async function applyIntent(session: RolloutSession, intent: Intent, input: {readonly wait: boolean; readonly timeoutMs?: number; readonly signal: AbortSignal}): Promise<RolloutStatus> {
  const engine = engineOf(session)
  if ((await loadState(session, input.signal)) === undefined) throw noRollout(session)
  await session.ports.check(input.signal)
  const deadline = input.timeoutMs === undefined ? undefined : session.clock.now() + input.timeoutMs
  for (;;) {
    // Abort is urgent and idempotent: it may wait a moment for a running `canary run` tick.
    const {state, decision} = await engine.tick(input.signal, intent, intent.kind === 'abort' ? 5000 : 0)
    const refusal = decision.refusal
    if (refusal === undefined) return statusOf(session, state, input.signal)
    const canWait = input.wait && refusal.kind === 'notEnoughData' && (deadline === undefined || session.clock.now() < deadline)
    if (!canWait) throw refusalError(session, intent, refusal)
    await session.clock.sleep(engine.tickMs, input.signal)
  }
}

function refusalError(session: RolloutSession, intent: Intent, refusal: Refusal): CanaryError {
  const verb = intent.kind === 'step' ? 'step' : intent.kind
  const subject = session.name
  switch (refusal.kind) {
    case 'analysisFailing':
      return new AnalysisFailedError(`release ${session.name}: ${verb} refused: ${refusal.message}`, {subject, suggestions: ['Abort with `canary abort`, or override with --force if you are sure.']})
    case 'notEnoughData':
      return new InconclusiveError(`release ${session.name}: ${verb} refused: ${refusal.message}`, {subject, suggestions: ['Wait for more traffic and try again, add --wait to wait for it, or --force to skip the check.']})
    case 'notInProgress':
      return new NotFoundError(`release ${session.name}: ${verb} refused: ${refusal.message}`, {subject, suggestions: [`Start a rollout with \`canary start ${session.name} --image REF\`.`]})
    case 'invalidWeight':
      return new UsageError(`release ${session.name}: ${verb} refused: ${refusal.message}`, {subject})
    default:
      return assertNever(refusal)
  }
}

/** How `canary run` ended, with its exit code. */
export interface RunReport {
  readonly status: RolloutStatus
  readonly exitCode: ExitCode
  readonly outcome: 'promoted' | 'rolledBack' | 'aborted' | 'paused' | 'inconclusive' | 'failed' | 'timeout'
}

/** `canary run`: start (or resume the same rollout) and follow the plan to the end. */
export async function runRollout(session: RolloutSession, input: {readonly canaryImage: string; readonly timeoutMs?: number; readonly signal: AbortSignal}): Promise<RunReport> {
  const deadlineMs = input.timeoutMs === undefined ? undefined : session.clock.now() + input.timeoutMs
  const current = await loadState(session, input.signal)
  if (current !== undefined && !isTerminal(current.phase)) {
    if (current.canaryImage !== input.canaryImage) {
      throw new ConflictError(`release ${session.name}: a rollout of ${current.canaryImage} is in progress (${current.phase}), not of ${input.canaryImage}`, {
        subject: session.name,
        suggestions: [`Resume it with \`canary run ${session.name} --image ${current.canaryImage}\`, or end it with \`canary abort\`.`],
      })
    }
    await session.ports.check(input.signal)
  } else if (current?.phase === 'Promoted' && current.stableImage === input.canaryImage) {
    // A re-run of a pipeline that already shipped this image: nothing to do, same answer.
    return {status: await statusOf(session, current, input.signal), exitCode: 0, outcome: 'promoted'}
  } else {
    try {
      await startRollout(session, input)
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error
    }
  }
  const result = await engineOf(session).run({signal: input.signal, ...(deadlineMs === undefined ? {} : {deadlineMs})})
  const status = await statusOf(session, result.state, input.signal)
  if (result.outcome === 'deadline') {
    const inconclusive = result.state.lastAnalysis?.verdict === 'Inconclusive'
    return {status, exitCode: inconclusive ? 13 : 14, outcome: inconclusive ? 'inconclusive' : 'timeout'}
  }
  const phase = result.state.phase
  const outcome = phase === 'Promoted' ? 'promoted' : phase === 'RolledBack' ? 'rolledBack' : phase === 'Aborted' ? 'aborted' : phase === 'Paused' ? 'paused' : phase === 'Inconclusive' ? 'inconclusive' : 'failed'
  return {status, exitCode: exitCodeFor(phase) ?? 1, outcome}
}

/** `canary status`: the state, the weights read back, the traffic since the weight was set. Finishes an interrupted promote/rollback. */
export async function rolloutStatus(session: RolloutSession, input: {readonly signal: AbortSignal}): Promise<RolloutStatus> {
  let state = await loadState(session, input.signal)
  if (state === undefined) throw noRollout(session)
  if (!isTerminal(state.phase)) {
    try {
      await session.ports.check(input.signal)
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error
      const saved = state
      throw new UnreachableError(`${error.message}; the saved rollout of ${saved.canaryImage} is ${saved.phase} at step ${Math.min(saved.stepIndex + 1, session.plan.steps.length)}/${session.plan.steps.length}`, {
        ...(error.subject === undefined ? {} : {subject: error.subject}),
        suggestions: ['The proxy and the replicas it supervised are gone, so no traffic is being split.', '`canary down` cleans up what is left (state included); then `canary start` or `canary run` again.'],
        cause: error,
      })
    }
  }
  if (state.phase === 'Promoting' || state.phase === 'RollingBack') {
    // A decided outcome whose actions were interrupted (Ctrl-C, kill -9): complete it.
    state = (await engineOf(session).tick(input.signal, undefined, 5000)).state
  }
  return statusOf(session, state, input.signal)
}

/** `canary status --wait`: block until the rollout ends; exit code of its phase. */
export async function waitForEnd(session: RolloutSession, input: {readonly timeoutMs?: number; readonly signal: AbortSignal; readonly onStatus?: (status: RolloutStatus) => void}): Promise<RolloutStatus> {
  const deadline = input.timeoutMs === undefined ? undefined : session.clock.now() + input.timeoutMs
  for (;;) {
    const status = await rolloutStatus(session, input)
    input.onStatus?.(status)
    if (status.terminal) return status
    if (deadline !== undefined && session.clock.now() >= deadline) {
      throw new TimeoutError(`release ${session.name}: still ${status.phase} after ${Math.round((input.timeoutMs ?? 0) / 1000)} s`, {subject: session.name, suggestions: ['Is a `canary run` driving it? Otherwise use `canary step`, `promote` or `abort`.']})
    }
    await session.clock.sleep(Math.min(1000, engineOf(session).tickMs), input.signal)
  }
}

/** `canary down`: stop everything the release started and remove its state. */
export async function downRelease(session: RolloutSession, input: {readonly signal: AbortSignal}): Promise<DownReport> {
  return session.ports.down(input.signal)
}

/** The status object for a state, with weights and traffic read back from the world when it can be reached. */
export async function statusOf(session: RolloutSession, state: RolloutState, signal: AbortSignal): Promise<RolloutStatus> {
  const plan = session.plan
  const nowMs = session.clock.now()
  let read: Weights | undefined
  let metrics: WindowMetrics | undefined
  if (!isTerminal(state.phase)) {
    read = await session.ports.router.getWeights(signal).catch(() => undefined)
    metrics = await session.ports.metrics.read({sinceMs: state.windowStartMs, untilMs: nowMs}, signal).catch(() => undefined)
  }
  const canaryWeight = read === undefined ? (isTerminal(state.phase) ? 0 : null) : Math.round((canaryPercent(read) * plan.totalWeight) / 100)
  const exitCode = isTerminal(state.phase) ? exitCodeFor(state.phase) : null
  return {
    name: state.name,
    phase: state.phase,
    terminal: isTerminal(state.phase),
    exitCode,
    step: {index: Math.min(state.stepIndex + 1, plan.steps.length), count: plan.steps.length, description: describeStep(plan.steps[state.stepIndex], {kind: 'status', totalWeight: plan.totalWeight})},
    canaryWeight,
    plannedWeight: desiredWeight(state, plan),
    totalWeight: plan.totalWeight,
    stable: {image: state.stableImage},
    canary: {image: state.canaryImage},
    proxy: {url: (await session.ports.endpoints()).proxyUrl ?? null},
    observed: metrics === undefined ? null : observedOf(metrics),
    analysis: state.lastAnalysis ?? null,
    endReason: state.endReason ?? null,
    message: state.endMessage ?? null,
    startedAt: new Date(state.startedAtMs).toISOString(),
    updatedAt: new Date(state.updatedAtMs).toISOString(),
    decisions: state.decisions.map((d) => ({...d, at: new Date(d.atMs).toISOString()})),
  }
}

function observedOf(metrics: WindowMetrics) {
  const total = metrics.stable.requests + metrics.canary.requests
  const seconds = (metrics.untilMs - metrics.sinceMs) / 1000
  const version = (v: {requests: number; errors: number}): ObservedVersion => ({
    requests: v.requests,
    errors: v.errors,
    sharePercent: total === 0 ? null : (v.requests / total) * 100,
    ratePerSecond: seconds <= 0 ? null : v.requests / seconds,
  })
  return {sinceMs: metrics.sinceMs, untilMs: metrics.untilMs, stable: version(metrics.stable), canary: version(metrics.canary)}
}
