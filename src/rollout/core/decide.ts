/**
 * The rollout reducer: `decide(state, observation, plan) → { next, actions }`. Pure; never throws
 * for domain outcomes (a failing canary, a refused command, a missing reading are all answers).
 * The engine loop and the manual commands (`step`, `promote`, `abort`) both call it: a manual
 * command is an observation carrying an intent, so both paths share one implementation and one test suite.
 */
import {errorResult, explainInconclusive, failedComparison, judge, judgePolicyOf, shownInLookLine, stableDegraded} from './analysis.js'
import {NO_EVIDENCE, lookTaken, observeWindow, rollbackDue} from './evidence.js'
import {assertNever} from './assert-never.js'
import {currentWeight, desiredWeight} from './plan.js'
import {isTerminal, type Action, type AnalysisResult, type Decision, type DecisionEvent, type EndReason, type Intent, type Observation, type Phase, type Plan, type Refusal, type RolloutState, type TerminalPhase} from './types.js'
import {weights} from './weights.js'

/** Decision log entries kept in the state (the oldest are dropped first). */
export const DECISION_LOG_LIMIT = 200

/** Default wait for the evidence to pass at one weight, when the spec sets none. */
export const DEFAULT_DEADLINE_MS = 30 * 60_000

/** A fresh rollout, before anything was deployed. */
export function newRollout(input: {readonly name: string; readonly stableImage: string; readonly canaryImage: string; readonly nowMs: number}): RolloutState {
  const state: RolloutState = {
    name: input.name,
    phase: 'Starting',
    stableImage: input.stableImage,
    canaryImage: input.canaryImage,
    startedAtMs: input.nowMs,
    updatedAtMs: input.nowMs,
    stepIndex: 0,
    stepStartedAtMs: input.nowMs,
    windowStartMs: input.nowMs,
    looks: 0,
    consecutiveBreaches: 0,
    decisions: [],
  }
  return log(state, input.nowMs, 'started', `rollout of ${input.canaryImage} started (stable ${input.stableImage})`, 0)
}

/** The reducer. */
export function decide(state: RolloutState, observation: Observation, plan: Plan): Decision {
  const intent = observation.intent
  if (isTerminal(state.phase)) return decideTerminal(state, intent)
  if (intent?.kind === 'abort') return rollBack(state, observation.nowMs, 'aborted', 'aborted by user', plan)
  switch (state.phase) {
    case 'Starting':
      return decideStarting(state, observation, plan)
    case 'Progressing':
    case 'Paused':
      return decideProgressing(state, observation, plan)
    case 'Promoting':
      return finish(state, observation.nowMs, 'Promoted', [
        {type: 'setWeights', weights: weights(plan.totalWeight, plan.totalWeight)},
        {type: 'promoteTarget', image: state.canaryImage},
        {type: 'finalizeRouter', outcome: 'promoted'},
        {type: 'removeCanary'},
      ], `promoted: ${state.canaryImage} is the stable version`, {stableImage: state.canaryImage})
    case 'RollingBack':
      return finish(state, observation.nowMs, terminalFor(state.endReason ?? 'aborted'), [
        {type: 'setWeights', weights: weights(0, plan.totalWeight)},
        {type: 'finalizeRouter', outcome: 'aborted'},
        {type: 'removeCanary'},
      ], `${state.endMessage ?? 'rolled back'}: stable ${state.stableImage} takes all traffic, canary removed`)
    default:
      return assertNever(state.phase as never)
  }
}

function decideTerminal(state: RolloutState, intent: Intent | undefined): Decision {
  if (intent === undefined || intent.kind === 'abort') return {next: state, actions: [], immediate: false}
  return {next: state, actions: [], immediate: false, refusal: {kind: 'notInProgress', message: `no rollout of ${state.name} is in progress (the last one ended ${state.phase})`}}
}

function decideStarting(state: RolloutState, observation: Observation, plan: Plan): Decision {
  const now = observation.nowMs
  if (state.deployedAtMs === undefined) {
    const next = log({...state, deployedAtMs: now, updatedAtMs: now}, now, 'deployed', `deploying canary ${state.canaryImage}`, 0)
    return {next, actions: [{type: 'reconcileRouter'}, {type: 'deployCanary', image: state.canaryImage}], immediate: false}
  }
  const readiness = observation.canary
  if (readiness?.ready === true) {
    const ready = log(state, now, 'ready', `canary ready (${readiness.readyReplicas}/${readiness.replicas})`, 0)
    return enterStep({...ready, phase: 'Progressing'}, 0, now, plan, 0)
  }
  if (readiness?.failed === true) {
    return rollBack(state, now, 'notReady', `canary failed to start: ${readiness.reason ?? 'not ready'}`, plan)
  }
  if (now - state.deployedAtMs >= plan.analysis.progressDeadlineMs) {
    const why = readiness?.reason === undefined ? '' : ` (${readiness.reason})`
    return rollBack(state, now, 'notReady', `canary not ready after ${Math.round(plan.analysis.progressDeadlineMs / 1000)} s${why}`, plan)
  }
  if (observation.intent !== undefined) {
    return refuse(state, {kind: 'notEnoughData', message: `canary ${state.canaryImage} is not ready yet`}, now, 0)
  }
  return {next: state, actions: [], immediate: false}
}

function decideProgressing(state: RolloutState, observation: Observation, plan: Plan): Decision {
  const now = observation.nowMs
  const wanted = desiredWeight(state, plan)
  const observed = observation.weights
  // Read the world back: if the router does not have our weight, set it again.
  if (observed !== undefined && observed.canary * plan.totalWeight !== wanted * observed.total) {
    const next = log({...newWindow(state, now), updatedAtMs: now}, now, 'weightCorrected', `router reports canary ${observed.canary}/${observed.total}, expected ${wanted}: setting it again`, wanted)
    return {next, actions: [{type: 'setWeights', weights: weights(wanted, plan.totalWeight)}], immediate: false}
  }
  const intent = observation.intent
  // A step to the weight in force changes nothing: no look, no log entry, so nothing to save.
  if (intent?.kind === 'step' && intent.weight === wanted) return {next: state, actions: [], immediate: false}
  // Every reading feeds the evidence (block by block), not only the looks.
  let current = wanted > 0 ? withEvidence(state, observation, plan) : state
  // A look is due every interval while the canary has traffic; a manual step or promote also looks
  // now, and so does evidence that the canary is worse than the tolerance (it rolls back at once).
  const lookDue = wanted > 0 && isLookDue(state, plan, now)
  const wantsGate = intent !== undefined && intent.kind !== 'abort' && wanted > 0
  const evidenceFails = wanted > 0 && current.evidence !== undefined && rollbackDue(current.evidence, judgePolicyOf(plan.analysis))
  if (lookDue || wantsGate || evidenceFails) {
    current = look(current, observation, plan, wanted)
    const failure = failureOf(current, plan)
    if (failure !== undefined && intent === undefined) return rollBack(current, now, 'analysis', failure, plan)
  }
  if (intent !== undefined && intent.kind !== 'abort') return applyIntent(current, intent, now, plan, wanted)
  if (current.phase === 'Paused') return {next: current, actions: [], immediate: false}
  const metrics = observation.metrics
  return advanceIfDone(current, now, plan, wanted, metrics === undefined || 'error' in metrics ? undefined : metrics.canary.requests)
}

/** The state with this tick's metric reading added to the evidence (a failed reading adds nothing). */
function withEvidence(state: RolloutState, observation: Observation, plan: Plan): RolloutState {
  const metrics = observation.metrics
  if (metrics === undefined || 'error' in metrics) return state
  return {...state, evidence: observeWindow(state.evidence ?? NO_EVIDENCE, metrics, observation.nowMs, judgePolicyOf(plan.analysis))}
}

/** A new analysis window from `now` (the weight changed): a new deadline, no longer holding. */
function newWindow(state: RolloutState, now: number): RolloutState {
  return {...state, windowStartMs: now, holdingSinceMs: undefined}
}

/** A look is due every interval while the canary has traffic (the engine asks too: it reads the recent window only then). */
export function isLookDue(state: RolloutState, plan: Plan, nowMs: number): boolean {
  return nowMs - Math.max(state.windowStartMs, state.lastAnalysis?.atMs ?? 0) >= plan.analysis.intervalMs
}

/** Take one look at the window and record it. */
function look(state: RolloutState, observation: Observation, plan: Plan, canaryWeight: number): RolloutState {
  const now = observation.nowMs
  const lookNumber = state.looks + 1
  const metrics = observation.metrics
  const evidence = state.evidence ?? NO_EVIDENCE
  const result: AnalysisResult = metrics === undefined || 'error' in metrics
    ? errorResult({look: lookNumber, atMs: now, windowStartMs: state.windowStartMs, canaryWeight, error: metrics === undefined ? 'not observed' : metrics.error})
    : judge({metrics, evidence, canaryReady: observation.canary?.ready ?? true, policy: plan.analysis, look: lookNumber, atMs: now, windowStartMs: state.windowStartMs, canaryWeight})
  // A broken guard (or an unready canary) counts against failureLimit; evidence against the canary needs no repeat.
  const breached = result.verdict === 'Failed' && failedComparison(result) === undefined
  const guardsClear = result.verdict !== 'Error' && !result.measurements.some((m) => m.verdict === 'Failed')
  const consecutiveBreaches = breached ? state.consecutiveBreaches + 1 : guardsClear ? 0 : state.consecutiveBreaches
  const next = {...state, looks: lookNumber, lastAnalysis: result, consecutiveBreaches, updatedAtMs: now, ...(metrics === undefined || 'error' in metrics ? {} : {evidence: lookTaken(evidence, stableDegraded(result))})}
  return log(next, now, 'analysis', `look ${lookNumber}: ${result.verdict}${describeLook(result)}`, canaryWeight, result)
}

/** Why the canary has failed, or undefined: worse than stable beyond the tolerance, or guards broken `failureLimit` looks in a row. */
function failureOf(state: RolloutState, plan: Plan): string | undefined {
  const result = state.lastAnalysis
  if (result === undefined || result.verdict !== 'Failed') return undefined
  const worse = failedComparison(result)
  if (worse !== undefined) return `analysis failed: ${worse.name} worse than stable beyond the tolerance: ${worse.measurement.note}`
  const limit = Math.max(1, plan.analysis.failureLimit)
  if (state.consecutiveBreaches >= limit) return `analysis failed ${state.consecutiveBreaches} time(s) in a row:${describeFailures(result)}`
  return undefined
}

function describeFailures(result: AnalysisResult): string {
  const failed = result.measurements.filter((m) => m.verdict === 'Failed' || m.verdict === 'Error')
  return failed.length === 0 ? '' : ` ${failed.map((m) => m.note).join('; ')}`
}

/** The look's line in the decision log: what failed, or else the comparisons' numbers and a hold. */
function describeLook(result: AnalysisResult): string {
  const failures = describeFailures(result)
  if (failures !== '') return failures
  const shown = shownInLookLine(result)
  return shown.length === 0 ? '' : ` ${shown.map((m) => `${m.check}: ${m.note}`).join('; ')}`
}

/** The measurement that explains an Inconclusive look, as a note. */
function inconclusiveNote(result: AnalysisResult): string {
  const m = explainInconclusive(result)
  return m === undefined ? 'inconclusive' : `${m.check}: ${m.note}`
}

/** The gate before more traffic: the current window must be judged Successful. */
function gateRefusal(state: RolloutState, wanted: number): Refusal | undefined {
  if (wanted === 0) return undefined
  const result = state.lastAnalysis
  if (result === undefined || result.windowStartMs !== state.windowStartMs) return {kind: 'notEnoughData', message: 'the canary has not been judged at its current weight yet'}
  switch (result.verdict) {
    case 'Successful':
      return undefined
    case 'Failed':
      return {kind: 'analysisFailing', message: `the canary is failing analysis:${describeFailures(result)}`}
    case 'Inconclusive':
      return {kind: 'notEnoughData', message: `not enough evidence to pass the canary yet: ${inconclusiveNote(result)}`}
    case 'Error':
      return {kind: 'notEnoughData', message: `the canary could not be judged:${describeFailures(result)}`}
    default:
      return assertNever(result.verdict)
  }
}

function applyIntent(state: RolloutState, intent: Exclude<Intent, {kind: 'abort'}>, now: number, plan: Plan, wanted: number): Decision {
  if (intent.kind === 'step' && intent.weight !== undefined) {
    const weight = intent.weight
    if (!Number.isInteger(weight) || weight < 0 || weight > plan.totalWeight) {
      return refuse(state, {kind: 'invalidWeight', message: `weight ${weight} is not an integer between 0 and ${plan.totalWeight}`}, now, wanted)
    }
    // Less traffic needs no gate; more traffic does.
    const refusal = weight > wanted && !intent.force ? gateRefusal(state, wanted) : undefined
    if (refusal !== undefined) return refuse(state, refusal, now, wanted)
    const next = log({...newWindow(state, now), weightOverride: weight, updatedAtMs: now}, now, 'weightSet', `canary weight set to ${weight}/${plan.totalWeight} by canary step --weight${intent.force ? ' --force' : ''}`, weight)
    return {next, actions: [{type: 'setWeights', weights: weights(weight, plan.totalWeight)}], immediate: false}
  }
  const refusal = intent.force ? undefined : gateRefusal(state, wanted)
  if (refusal !== undefined) return refuse(state, refusal, now, wanted)
  const forced = intent.force ? ' (forced)' : ''
  if (intent.kind === 'promote') return startPromoting(state, now, `promotion requested${forced}`, wanted)
  return enterStep(log(state, now, 'stepAdvanced', `advanced by canary step${forced}`, wanted), state.stepIndex + 1, now, plan, wanted)
}

/** Automatic progress: move on when the current step is complete and the canary passed its gate; `canaryRequests` were seen at this weight. */
function advanceIfDone(state: RolloutState, now: number, plan: Plan, wanted: number, canaryRequests: number | undefined): Decision {
  const step = plan.steps[state.stepIndex]
  const stay: Decision = {next: state, actions: [], immediate: false}
  if (step !== undefined && step.kind === 'pause') {
    // An indefinite pause is entered as Paused (enterStep); here only timed pauses remain.
    if (step.durationMs === undefined || now - state.stepStartedAtMs < step.durationMs) return stay
  }
  const refusal = gateRefusal(state, wanted)
  if (refusal === undefined) return enterStep(log(state, now, 'stepAdvanced', `step ${state.stepIndex + 1} done`, wanted), state.stepIndex + 1, now, plan, wanted)
  if (refusal.kind !== 'notEnoughData' || state.holdingSinceMs !== undefined) return stay
  const deadline = deadlinePassed(state, now, plan, canaryRequests)
  if (deadline === undefined) return stay
  if (plan.analysis.onInconclusive === 'hold') {
    const next = log({...state, holdingSinceMs: now, updatedAtMs: now}, now, 'holding', `inconclusive ${deadline} at weight ${wanted}: holding the weight and judging on (onInconclusive: hold); ${refusal.message}`, wanted)
    return {next, actions: [], immediate: false}
  }
  return rollBack(state, now, 'inconclusive', `inconclusive ${deadline} at weight ${wanted}: ${refusal.message}`, plan)
}

/** "after 1800 s" / "after 20000 canary requests" once a deadline at this weight has passed, else undefined. */
function deadlinePassed(state: RolloutState, now: number, plan: Plan, canaryRequests: number | undefined): string | undefined {
  const deadlineMs = plan.analysis.deadlineMs ?? DEFAULT_DEADLINE_MS
  if (now - state.windowStartMs >= deadlineMs) return `after ${Math.round(deadlineMs / 1000)} s`
  const requests = plan.analysis.deadlineRequests
  if (requests !== undefined && canaryRequests !== undefined && canaryRequests >= requests) return `after ${canaryRequests} canary requests (deadline ${requests})`
  return undefined
}

/** Enter step `index` (or promote after the last one), emitting the weight change it implies; `previous` is the weight in force. */
function enterStep(state: RolloutState, index: number, now: number, plan: Plan, previous: number): Decision {
  if (index >= plan.steps.length) {
    return startPromoting({...state, stepIndex: plan.steps.length, weightOverride: undefined}, now, 'every step done', previous)
  }
  const step = plan.steps[index]!
  const entered: RolloutState = {...state, phase: 'Progressing', stepIndex: index, stepStartedAtMs: now, weightOverride: undefined, updatedAtMs: now}
  const weight = currentWeight(plan, index)
  const actions: Action[] = []
  let next = entered
  if (weight !== previous) {
    actions.push({type: 'setWeights', weights: weights(weight, plan.totalWeight)})
    next = log(newWindow(next, now), now, 'weightSet', `step ${index + 1}/${plan.steps.length}: canary weight ${weight}/${plan.totalWeight}`, weight)
  }
  switch (step.kind) {
    case 'setWeight':
      break
    case 'pause':
      if (step.durationMs === undefined) {
        next = log({...next, phase: 'Paused'}, now, 'paused', `step ${index + 1}/${plan.steps.length}: paused until canary step or canary promote`, weight)
      }
      break
    default:
      assertNever(step)
  }
  return {next, actions, immediate: false}
}

function startPromoting(state: RolloutState, now: number, why: string, weight: number): Decision {
  const next = log({...state, phase: 'Promoting', updatedAtMs: now}, now, 'promoting', `promoting ${state.canaryImage}: ${why}`, weight)
  return {next, actions: [], immediate: true}
}

/** Start rolling back; traffic goes back to stable at once, the rest follows on the next tick. */
function rollBack(state: RolloutState, now: number, reason: EndReason, message: string, plan: Plan): Decision {
  const next = log({...state, phase: 'RollingBack', endReason: reason, endMessage: message, updatedAtMs: now}, now, 'rollingBack', `rolling back: ${message}`, 0)
  const actions: Action[] = state.phase === 'Starting' ? [] : [{type: 'setWeights', weights: weights(0, plan.totalWeight)}]
  return {next, actions, immediate: true}
}

function finish(state: RolloutState, now: number, phase: TerminalPhase, actions: Action[], message: string, extra: Partial<RolloutState> = {}): Decision {
  const next = log({...state, ...extra, phase, weightOverride: undefined, updatedAtMs: now}, now, 'finished', message, 0)
  return {next, actions, immediate: false}
}

function terminalFor(reason: EndReason): TerminalPhase {
  switch (reason) {
    case 'analysis':
      return 'RolledBack'
    case 'aborted':
      return 'Aborted'
    case 'inconclusive':
      return 'Inconclusive'
    case 'notReady':
      return 'Failed'
    default:
      return assertNever(reason)
  }
}

function refuse(state: RolloutState, refusal: Refusal, now: number, canaryWeight: number): Decision {
  const next = log({...state, updatedAtMs: now}, now, 'refused', `refused: ${refusal.message}`, canaryWeight)
  return {next, actions: [], immediate: false, refusal}
}

function log(state: RolloutState, atMs: number, event: DecisionEvent, message: string, canaryWeight: number, analysis?: AnalysisResult): RolloutState {
  const entry = {atMs, event, message, phase: state.phase as Phase, stepIndex: state.stepIndex, canaryWeight, ...(analysis === undefined ? {} : {analysis})}
  const decisions = [...state.decisions, entry]
  return {...state, decisions: decisions.length > DECISION_LOG_LIMIT ? decisions.slice(-DECISION_LOG_LIMIT) : decisions}
}
