/**
 * The one schema of a persisted RolloutState (src/rollout/core/types.ts), checked on every load
 * and before every save, so a state file that was edited, truncated or written by another version
 * is refused by field instead of being used (or ending in a TypeError deep in the engine).
 *
 * It lives beside the core, not in it (the core imports no libraries), and the type-level check at
 * the end fails the build when the schema and the core's type drift apart.
 *
 * zod/mini, not zod: the lifecycle commands load this on every call, and the tree-shaken mini
 * build costs a few KB in the CLI bundle where full zod costs ~60 ms of start-up (scripts/build.js).
 */
import * as z from 'zod/mini'

import type {RolloutState} from './core/types.js'

const count = z.int().check(z.minimum(0))
const timeMs = z.number().check(z.minimum(0))
const finite = z.number()
const nullableNumber = z.nullable(finite)

const phase = z.enum(['Starting', 'Progressing', 'Paused', 'Promoting', 'RollingBack', 'Promoted', 'RolledBack', 'Aborted', 'Inconclusive', 'Failed'])
const verdict = z.enum(['Successful', 'Failed', 'Inconclusive', 'Error'])

const measurement = z.strictObject({
  check: z.enum(['requests', 'ready', 'successRate', 'latencyP99', 'errorRateVsStable', 'latencyVsStable', 'stableBaseline']),
  value: nullableNumber,
  stableValue: z.optional(nullableNumber),
  threshold: z.optional(finite),
  bound: z.optional(nullableNumber),
  boundMs: z.optional(nullableNumber),
  stableBreaks: z.optional(z.boolean()),
  ratio: z.optional(nullableNumber),
  ratioInterval: z.optional(z.nullable(z.strictObject({lower: finite, upper: nullableNumber}))),
  toleratedRatio: z.optional(finite),
  evidence: z.optional(z.strictObject({rollback: finite, rollbackNeeded: finite, pass: finite, passNeeded: finite, blocks: count})),
  verdict,
  note: z.string(),
})

const histogram = z.strictObject({boundsSeconds: z.array(finite), counts: z.array(finite)})
// Counts are numbers, not integers: Prometheus' increase() reports fractions.
const versionCounts = z.strictObject({requests: z.number().check(z.minimum(0)), errors: z.number().check(z.minimum(0)), latency: histogram})
const bets = z.strictObject({
  logWealthRollback: finite,
  logWealthPass: finite,
  logWealthRollbackAbsolute: finite,
  logWealthPassAbsolute: finite,
  logWealthPassMixed: z.optional(finite),
  recentSum: finite,
  recentSquares: finite,
  absoluteSum: finite,
  absoluteSquares: finite,
  recentBlocks: z.optional(finite),
  absoluteBlocks: z.optional(finite),
  rollbackStake: z.optional(finite),
  rollbackCurvature: z.optional(finite),
  absoluteRollbackStake: z.optional(finite),
  absoluteRollbackCurvature: z.optional(finite),
  blocks: count,
  canaryEvents: finite,
  stableEvents: finite,
  expectedCanaryEvents: finite,
})
const evidence = z.strictObject({
  errors: bets,
  latency: bets,
  canary: versionCounts,
  stable: versionCounts,
  spanMs: z.optional(finite),
  slowBoundSeconds: nullableNumber,
  stableBaseline: z.optional(z.strictObject({requests: finite, errors: finite})),
  sinceLook: z.strictObject({canary: versionCounts, stable: versionCounts}),
  pending: z.optional(z.strictObject({startMs: timeMs, canary: versionCounts, stable: versionCounts})),
  lastReading: z.optional(z.strictObject({sinceMs: timeMs, atMs: timeMs, canary: versionCounts, stable: versionCounts})),
})

const analysisResult = z.strictObject({
  look: count,
  atMs: timeMs,
  windowStartMs: timeMs,
  canaryWeight: count,
  verdict,
  measurements: z.array(measurement),
})

const decisionLogEntry = z.strictObject({
  atMs: timeMs,
  event: z.enum(['started', 'deployed', 'ready', 'weightSet', 'weightCorrected', 'analysis', 'stepAdvanced', 'paused', 'holding', 'refused', 'promoting', 'rollingBack', 'finished']),
  message: z.string(),
  phase,
  stepIndex: count,
  canaryWeight: count,
  analysis: z.optional(analysisResult),
})

/** A RolloutState as stored: every field, its type and range; unknown fields are refused. */
export const rolloutStateSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  phase,
  stableImage: z.string().check(z.minLength(1)),
  canaryImage: z.string().check(z.minLength(1)),
  startedAtMs: timeMs,
  updatedAtMs: timeMs,
  deployedAtMs: z.optional(timeMs),
  stepIndex: count,
  stepStartedAtMs: timeMs,
  weightOverride: z.optional(count),
  windowStartMs: timeMs,
  looks: count,
  consecutiveBreaches: count,
  evidence: z.optional(evidence),
  holdingSinceMs: z.optional(timeMs),
  lastAnalysis: z.optional(analysisResult),
  endReason: z.optional(z.enum(['analysis', 'aborted', 'inconclusive', 'notReady'])),
  endMessage: z.optional(z.string()),
  decisions: z.array(decisionLogEntry),
})

// The schema's output type must be exactly the core's RolloutState (modulo `readonly`): a field
// added, removed or retyped on one side only fails `tsc` here.
type Mutable<T> = T extends readonly (infer E)[] ? Mutable<E>[] : T extends object ? {-readonly [K in keyof T]: Mutable<T[K]>} : T
type Equals<A, B> = (<V>() => V extends A ? 1 : 2) extends <V>() => V extends B ? 1 : 2 ? true : false
const schemaMatchesCoreType: Equals<z.output<typeof rolloutStateSchema>, Mutable<RolloutState>> = true
void schemaMatchesCoreType
