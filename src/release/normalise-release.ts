/**
 * From the checked spec document to the `Release` the rest of canary reads: every default applied
 * (docs/spec.md lists them), durations in milliseconds, maps sorted, and the whole value frozen.
 */
import {DEFAULT_ERROR_TOLERANCE, DEFAULT_LATENCY_TOLERANCE, DEFAULT_MAX_FALSE_PASS_RATE, DEFAULT_MAX_FALSE_POSITIVE_RATE, type Tolerance} from '../rollout/core/evidence.js'
import {DEFAULT_TOTAL_WEIGHT} from '../rollout/core/weights.js'
import {parseDurationMs} from './duration.js'
import {parseImageRef} from './image-ref.js'
import type {HeaderMatch, LocalSpec, Release, Step} from './release.js'
import {headerRuleKind} from './release-rules.js'
import type {ReleaseDocument} from './schema.js'
import {readSteps} from './steps.js'

/** Image of the bundled proxy when it runs in a cluster (router `proxy`). */
export const DEFAULT_PROXY_IMAGE = 'ghcr.io/canary-dev/canary:0.1.0'

const DEFAULTS = {
  namespace: 'default',
  replicas: 1,
  path: '/',
  probePeriodSeconds: 5,
  intervalMs: 30_000,
  minRequests: 100,
  failureLimit: 1,
  progressDeadlineMs: 600_000,
  localListen: '127.0.0.1:8080',
  readyTimeoutMs: 60_000,
} as const

/** The release `document` describes; `document` has passed the schema and the rules. */
export function normaliseRelease(document: ReleaseDocument): Release {
  const spec = document.spec
  const totalWeight = spec.totalWeight ?? DEFAULT_TOTAL_WEIGHT
  const steps = readSteps(spec.steps, totalWeight).steps as Step[]
  const header = spec.match?.header
  const headerMatch = header === undefined ? undefined : headerMatchOf(header)
  const cookie = spec.match?.cookie
  const local: LocalSpec | undefined = spec.local === undefined ? undefined : {
    ...(spec.local.command === undefined ? {} : {command: spec.local.command}),
    ...(spec.local.upstreams === undefined ? {} : {upstreams: spec.local.upstreams}),
    listen: spec.local.listen ?? DEFAULTS.localListen,
    ...(spec.local.adminListen === undefined ? {} : {adminListen: spec.local.adminListen}),
    readyTimeoutMs: durationMs(spec.local.readyTimeout) ?? DEFAULTS.readyTimeoutMs,
  }
  const analysis = spec.analysis ?? {}
  const release: Release = {
    name: document.metadata.name,
    namespace: document.metadata.namespace ?? DEFAULTS.namespace,
    image: parseImageRef(spec.image),
    replicas: spec.replicas ?? DEFAULTS.replicas,
    port: spec.port,
    spread: spec.spread ?? false,
    ...(spec.resources === undefined ? {} : {resources: {...(spec.resources.requests === undefined ? {} : {requests: sortedRecord(spec.resources.requests)}), ...(spec.resources.limits === undefined ? {} : {limits: sortedRecord(spec.resources.limits)})}}),
    env: sortedRecord(spec.env ?? {}),
    ...(spec.probe === undefined ? {} : {probe: {path: spec.probe.path, port: spec.probe.port ?? spec.port, periodSeconds: spec.probe.periodSeconds ?? DEFAULTS.probePeriodSeconds, initialDelaySeconds: spec.probe.initialDelaySeconds ?? 0}}),
    ...(spec.ingress === undefined ? {} : {ingress: {
      host: spec.ingress.host,
      path: spec.ingress.path ?? DEFAULTS.path,
      router: spec.ingress.router ?? 'proxy',
      ...(spec.ingress.className === undefined ? {} : {className: spec.ingress.className}),
      traefikApiGroup: spec.ingress.traefikApiGroup ?? 'traefik.io',
      ...(spec.ingress.gateway === undefined ? {} : {gateway: spec.ingress.gateway}),
      ...(spec.ingress.tls === undefined ? {} : {tls: spec.ingress.tls}),
    }}),
    steps,
    totalWeight,
    ...(spec.match === undefined ? {} : {match: {...(headerMatch === undefined ? {} : {header: headerMatch}), ...(cookie === undefined ? {} : {cookie: {name: typeof cookie === 'string' ? cookie : cookie.name}})}}),
    ...(spec.sticky === undefined ? {} : {sticky: spec.sticky}),
    ...(spec.mirror === undefined ? {} : {mirror: spec.mirror}),
    analysis: {
      intervalMs: durationMs(analysis.interval) ?? DEFAULTS.intervalMs,
      minRequests: analysis.minRequests ?? DEFAULTS.minRequests,
      ...(analysis.successRate === undefined ? {} : {successRatePercent: analysis.successRate}),
      ...(analysis.latencyP99 === undefined ? {} : {latencyP99Ms: durationMs(analysis.latencyP99)}),
      failureLimit: analysis.failureLimit ?? DEFAULTS.failureLimit,
      progressDeadlineMs: durationMs(analysis.progressDeadline) ?? DEFAULTS.progressDeadlineMs,
      ...(analysis.deadline === undefined ? {} : {deadlineMs: durationMs(analysis.deadline)}),
      ...(analysis.deadlineRequests === undefined ? {} : {deadlineRequests: analysis.deadlineRequests}),
      onInconclusive: analysis.onInconclusive ?? 'abort',
      errorTolerance: toleranceOf(analysis.tolerance?.errorRate, DEFAULT_ERROR_TOLERANCE),
      latencyTolerance: toleranceOf(analysis.tolerance?.latency, DEFAULT_LATENCY_TOLERANCE),
      maxFalsePositiveRate: analysis.maxFalsePositiveRate ?? DEFAULT_MAX_FALSE_POSITIVE_RATE,
      maxFalsePassRate: analysis.maxFalsePassRate ?? DEFAULT_MAX_FALSE_PASS_RATE,
      ...(analysis.prometheus === undefined ? {} : {prometheus: {url: analysis.prometheus.url, queries: analysis.prometheus.queries ?? {}}}),
    },
    target: spec.target ?? (spec.local !== undefined ? 'local' : 'kubernetes'),
    ...(local === undefined ? {} : {local}),
    proxy: {image: spec.proxy?.image ?? DEFAULT_PROXY_IMAGE, replicas: spec.proxy?.replicas ?? 1},
  }
  return deepFreeze(release)
}

function headerMatchOf({name, value, pattern}: {readonly name?: string; readonly value?: string; readonly pattern?: string}): HeaderMatch | undefined {
  if (name === undefined) return undefined
  const kind = headerRuleKind({value, pattern})
  if (kind === 'pattern' && pattern !== undefined) return {kind, name, pattern}
  if (kind === 'exact' && value !== undefined) return {kind, name, value}
  return {kind: 'always-never', name}
}

/**
 * A tolerance with defaults for the fields left out. `perMinute` defaults only when `points` is
 * left out too: a spec that states its absolute allowance in points (written before `perMinute`
 * existed) keeps exactly the tolerance it stated.
 */
function toleranceOf(stated: {readonly ratio?: number; readonly points?: number; readonly perMinute?: number} | undefined, defaults: Tolerance): Tolerance {
  return {
    ratio: stated?.ratio ?? defaults.ratio,
    points: stated?.points ?? defaults.points,
    perMinute: stated?.perMinute ?? (stated?.points === undefined ? (defaults.perMinute ?? 0) : 0),
  }
}

function durationMs(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDurationMs(text)
}

function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
