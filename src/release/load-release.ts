/**
 * Reads a release spec: YAML (with positions) → shape check (zod) → cross-field checks →
 * a normalized, readonly `Release`. Every problem is collected and thrown together in one
 * ConfigError, each with file:line:col, the field path, what was expected and a suggestion.
 */
import type {z} from 'zod'

import {capProblems, parseConfigYaml, yaml11BooleanHint, type ConfigYaml} from '../config-file/parse-config-yaml.js'
import {CONFIG_LIMITS, preview, type ConfigLimits} from '../config-file/limits.js'
import {readConfigFile} from '../config-file/read-config-file.js'
import {ConfigError, NotFoundError, type ConfigProblem, type SourceLocation} from '../errors.js'
import {DEFAULT_TOTAL_WEIGHT} from '../rollout/core/weights.js'
import {DEFAULT_ERROR_TOLERANCE, DEFAULT_LATENCY_TOLERANCE, DEFAULT_MAX_FALSE_PASS_RATE, DEFAULT_MAX_FALSE_POSITIVE_RATE} from '../rollout/core/evidence.js'
import {capabilityProblems, type UsedFeature} from './capabilities.js'
import {didYouMean} from './did-you-mean.js'
import {parseDurationMs} from './duration.js'
import {parseImageRef} from './image-ref.js'
import {ROUTER_KINDS, type HeaderMatch, type LocalSpec, type Release, type RouterKind, type Step} from './release.js'
import {RELEASE_API_VERSION, ReleaseDocumentSchema, type ReleaseDocument} from './schema.js'
import {readSteps} from './steps.js'

/** A parsed release and where it came from. */
export interface LoadedRelease {
  /** The file it was read from (as given). */
  readonly file: string
  /** The normalized release. */
  readonly release: Release
  /** Position of every field in the file, by dotted path (`spec.match.header`), for later problems. */
  readonly locations: ReadonlyMap<string, SourceLocation>
}

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

/**
 * Reads and parses a release spec file; a missing file is a NotFoundError (exit 4). Only a regular
 * file of at most 1 MiB of UTF-8 is read (docs/spec.md "Limits and YAML dialect"); anything else is a ConfigError.
 */
export async function loadRelease(file: string): Promise<LoadedRelease> {
  const text = await readConfigFile(file, {
    label: 'release spec',
    missing: (missing, cause) => new NotFoundError(`release spec ${missing}: not found`, {subject: missing, cause, suggestions: ['Create one with `canary init`, or pass the file with -f/--file.']}),
  })
  return parseRelease(text, file)
}

export interface ParseReleaseOptions {
  /** Defaults to CONFIG_LIMITS (benchmarks lift the size limit to measure growth past it). */
  readonly limits?: Partial<ConfigLimits>
}

/** Parses release spec text; throws a ConfigError carrying every problem found. */
export function parseRelease(text: string, file: string, options: ParseReleaseOptions = {}): LoadedRelease {
  const yaml = parseConfigYaml(text, file, {limits: options.limits})
  const fail = (problems: ConfigProblem[]): never => {
    throw new ConfigError(`release spec ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} found`, capProblems(problems), {
      subject: file,
      suggestions: ['Fix the problems listed above, then run `canary validate` again.'],
    })
  }

  if (yaml.problems.length > 0) fail(yaml.problems)
  if (yaml.empty) {
    fail([{location: {file, line: 1, column: 1}, path: '', message: 'the file is empty: expected a Release document', suggestion: 'run `canary init` to write a starter spec'}])
  }
  const raw: unknown = yaml.value
  const locate = (path: readonly PropertyKey[]): SourceLocation => yaml.locate(path)
  const locateKey = (path: readonly PropertyKey[]): SourceLocation => yaml.locate(path, 'key')

  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    fail([{location: locate([]), path: '', message: `expected a Release document (a mapping with apiVersion ${RELEASE_API_VERSION} and kind Release), got ${describe(raw)}`}])
  }
  const top = raw as Record<string, unknown>
  if (top.kind !== 'Release' || top.apiVersion !== RELEASE_API_VERSION) {
    const field = top.kind !== 'Release' ? 'kind' : 'apiVersion'
    fail([{
      location: 'kind' in top || 'apiVersion' in top ? locate([field]) : locate([]),
      path: field,
      message: `this is not a Release: expected apiVersion: ${RELEASE_API_VERSION} and kind: Release, got ${describe(top.apiVersion)} / ${describe(top.kind)}`,
      suggestion: 'canary reads release specs written by `canary init`; Kubernetes manifests go to kubectl',
    }])
  }

  const problems: ConfigProblem[] = []
  const parsed = ReleaseDocumentSchema.safeParse(raw, {reportInput: true})
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...issueProblems(issue, locate, locateKey))
  }
  const spec = (top.spec ?? {}) as Record<string, unknown>
  const crossProblems = crossFieldProblems(spec)
  for (const problem of crossProblems) problems.push(located(problem, problem.locateKey === true ? locateKey(problem.at) : locate(problem.at)))
  if (problems.length > 0 || !parsed.success) fail(sortProblems(problems))

  const release = normalize((parsed as {data: ReleaseDocument}).data)
  return {file, release, locations: fieldLocations(yaml)}
}

/** The problems of rendering `release` with `router` (which may differ from the spec's), with positions. */
export function routerProblemsFor(loaded: LoadedRelease, router: RouterKind): ConfigProblem[] {
  const problems = routerProblems(router, releaseFeatures(loaded.release))
  return problems.map((p) => located(p, loaded.locations.get(dotted(p.at)) ?? {file: loaded.file}))
}

/** The public ConfigProblem shape (no internal `at`/`locateKey` fields leak into --json). */
function located(problem: PathProblem, location: SourceLocation): ConfigProblem {
  return {location, path: dotted(problem.at), message: problem.message, ...(problem.suggestion === undefined ? {} : {suggestion: problem.suggestion})}
}

interface PathProblem {
  readonly at: readonly (string | number)[]
  readonly message: string
  readonly suggestion?: string
  readonly locateKey?: boolean
}

/** What a spec asks of its router, from raw or parsed data. */
interface RouterFeatures {
  readonly used: readonly UsedFeature[]
  /** Header name, value and pattern strings, for routers that quote them in rule strings. */
  readonly headerTexts: readonly string[]
  readonly weights: readonly number[]
  readonly totalWeight: number
}

function routerProblems(router: RouterKind, features: RouterFeatures): PathProblem[] {
  const problems: PathProblem[] = capabilityProblems(router, features.used).map((p) => ({at: p.path.split('.'), message: p.message, suggestion: p.suggestion}))
  if ((router === 'traefik' || router === 'traefik-file') && features.headerTexts.some((text) => text.includes('`'))) {
    problems.push({at: ['spec', 'match', 'header'], message: `router ${router} cannot match a header name, value or pattern containing a backtick: Traefik rules quote values with backticks`, suggestion: 'use a value without backticks'})
  }
  if (router === 'traefik-file' && features.headerTexts.some((text) => text.includes('{{') || text.includes('}}'))) {
    // Traefik evaluates file-provider files as Go templates (docs: "Go Templating").
    problems.push({at: ['spec', 'match', 'header'], message: 'router traefik-file cannot match a header name, value or pattern containing "{{" or "}}": Traefik evaluates file-provider configuration as a Go template', suggestion: 'use a value without double braces (a regex can write {2} instead of repeating)'})
  }
  if (router === 'nginx' && features.totalWeight < DEFAULT_TOTAL_WEIGHT && DEFAULT_TOTAL_WEIGHT % features.totalWeight !== 0) {
    // ingress-nginx's Lua balancer only honours canary-weight-total above 100 (balancer.lua), so smaller totals are rescaled to percent.
    problems.push({at: ['spec', 'totalWeight'], message: `router nginx cannot use totalWeight ${features.totalWeight}: ingress-nginx ignores canary-weight-total below 100, and ${features.totalWeight} does not divide 100`, suggestion: 'use 100 or a larger total such as 1000'})
  }
  if (router === 'traefik-v1') {
    // Traefik 1.7 service-weights take percentages with at most 3 decimals (docs/configuration/backends/kubernetes.md).
    const inexact = features.weights.find((weight) => !Number.isInteger(Math.round((weight * 100_000) / features.totalWeight * 1e6) / 1e6))
    if (inexact !== undefined) {
      problems.push({at: ['spec', 'totalWeight'], message: `router traefik-v1 cannot express weight ${inexact}/${features.totalWeight}: service-weights are percentages with at most 3 decimals`, suggestion: 'use a totalWeight of 100, 1000, 10000 or 100000'})
    }
  }
  return problems
}

function releaseFeatures(release: Release): RouterFeatures {
  const used: UsedFeature[] = []
  const header = release.match?.header
  if (header !== undefined) used.push({feature: header.kind === 'always-never' ? 'headerAlwaysNever' : header.kind === 'exact' ? 'headerExact' : 'headerPattern', path: 'spec.match.header'})
  if (release.match?.cookie !== undefined) used.push({feature: 'cookie', path: 'spec.match.cookie'})
  if (release.sticky !== undefined) used.push({feature: 'sticky', path: 'spec.sticky'})
  if (release.mirror !== undefined) used.push({feature: 'mirror', path: 'spec.mirror'})
  const headerTexts = header === undefined ? [] : [header.name, header.kind === 'exact' ? header.value : header.kind === 'pattern' ? header.pattern : '']
  const weights = release.steps.flatMap((step) => (step.kind === 'setWeight' ? [step.weight] : []))
  return {used, headerTexts, weights, totalWeight: release.totalWeight}
}

/** Checks that span fields, done on the raw data so they are reported alongside shape problems. */
function crossFieldProblems(spec: Record<string, unknown>): PathProblem[] {
  const problems: PathProblem[] = []
  const totalWeight = typeof spec.totalWeight === 'number' && Number.isInteger(spec.totalWeight) && spec.totalWeight > 0 ? spec.totalWeight : DEFAULT_TOTAL_WEIGHT
  let weights: number[] = []
  if (Array.isArray(spec.steps) && spec.steps.length > 0) {
    const read = readSteps(spec.steps, totalWeight)
    for (const problem of read.problems) problems.push({at: ['spec', 'steps', ...problem.path], message: problem.message, suggestion: problem.suggestion, locateKey: typeof problem.path.at(-1) === 'string' && problem.message.startsWith('unknown')})
    weights = read.steps.flatMap((step) => (step?.kind === 'setWeight' ? [step.weight] : []))
  }

  const used: UsedFeature[] = []
  const headerTexts: string[] = []
  const match = asRecord(spec.match)
  const header = asRecord(match?.header)
  if (header !== undefined) {
    if (typeof header.name !== 'string' || header.name === '') {
      problems.push({at: ['spec', 'match', 'header'], message: 'header match without a name: expected name, e.g. {name: X-Canary, value: always}'})
    } else {
      headerTexts.push(header.name)
    }
    if (header.value !== undefined && header.pattern !== undefined) {
      problems.push({at: ['spec', 'match', 'header', 'pattern'], message: 'header match has both value and pattern: expected one (ingress-nginx silently ignores the pattern when a value is set)', suggestion: 'keep value for an exact match, or pattern for a regex'})
    }
    if (header.value === 'never') {
      problems.push({at: ['spec', 'match', 'header', 'value'], message: 'value "never" is reserved: with value always (or no value) a request header of "never" already keeps the request on stable', suggestion: 'use value: always'})
    }
    if (typeof header.value === 'string') headerTexts.push(header.value)
    if (typeof header.pattern === 'string') {
      headerTexts.push(header.pattern)
      try {
        new RegExp(header.pattern)
      } catch (error) {
        problems.push({at: ['spec', 'match', 'header', 'pattern'], message: `regular expression does not compile: ${(error as Error).message}`, suggestion: 'checked as a JavaScript RegExp; ingress-nginx uses PCRE and Traefik/Gateway implementations use RE2, so keep to the common subset'})
      }
    }
    used.push({feature: header.pattern !== undefined ? 'headerPattern' : header.value !== undefined && header.value !== 'always' ? 'headerExact' : 'headerAlwaysNever', path: 'spec.match.header'})
  }
  if (match?.cookie !== undefined) used.push({feature: 'cookie', path: 'spec.match.cookie'})
  if (spec.sticky !== undefined) used.push({feature: 'sticky', path: 'spec.sticky'})
  if (spec.mirror !== undefined) used.push({feature: 'mirror', path: 'spec.mirror'})

  const local = asRecord(spec.local)
  const target = spec.target ?? (local !== undefined ? 'local' : 'kubernetes')
  const ingress = asRecord(spec.ingress)
  if (local !== undefined && (local.command === undefined) === (local.upstreams === undefined)) {
    problems.push({at: ['spec', 'local'], message: 'expected exactly one of command (start the app per track) or upstreams (servers already running)'})
  }
  if (target === 'local' && local === undefined) {
    problems.push({at: ['spec', 'target'], message: 'target local needs spec.local: expected {command: …} or {upstreams: …}'})
  }
  if (target === 'kubernetes') {
    if (ingress === undefined) {
      problems.push({at: ['spec'], message: 'the kubernetes target needs spec.ingress: expected {host, path, router}', suggestion: 'add an ingress section, or a local section for a local rollout'})
    } else if (ingress.router === undefined) {
      problems.push({at: ['spec', 'ingress'], message: 'the kubernetes target needs spec.ingress.router: expected one of nginx, traefik, traefik-v1, traefik-file, gateway-api, proxy'})
    }
  }
  if (ingress?.router === 'gateway-api' && ingress.gateway === undefined) {
    problems.push({at: ['spec', 'ingress'], message: 'router gateway-api needs spec.ingress.gateway: expected {name, namespace?, sectionName?} of the Gateway the HTTPRoute attaches to'})
  }
  if (typeof ingress?.router === 'string' && isRouterKind(ingress.router)) {
    problems.push(...routerProblems(ingress.router, {used, headerTexts, weights, totalWeight}))
  }
  return problems
}

function normalize(document: ReleaseDocument): Release {
  const spec = document.spec
  const totalWeight = spec.totalWeight ?? DEFAULT_TOTAL_WEIGHT
  const steps = readSteps(spec.steps, totalWeight).steps as Step[]
  const header = spec.match?.header
  const headerMatch: HeaderMatch | undefined = header === undefined || header.name === undefined ? undefined
    : header.pattern !== undefined ? {kind: 'pattern', name: header.name, pattern: header.pattern}
    : header.value !== undefined && header.value !== 'always' ? {kind: 'exact', name: header.name, value: header.value}
    : {kind: 'always-never', name: header.name}
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
      errorTolerance: {ratio: analysis.tolerance?.errorRate?.ratio ?? DEFAULT_ERROR_TOLERANCE.ratio, points: analysis.tolerance?.errorRate?.points ?? DEFAULT_ERROR_TOLERANCE.points},
      latencyTolerance: {ratio: analysis.tolerance?.latency?.ratio ?? DEFAULT_LATENCY_TOLERANCE.ratio, points: analysis.tolerance?.latency?.points ?? DEFAULT_LATENCY_TOLERANCE.points},
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

function issueProblems(issue: z.core.$ZodIssue, locate: (path: readonly PropertyKey[]) => SourceLocation, locateKey: (path: readonly PropertyKey[]) => SourceLocation): ConfigProblem[] {
  const path = issue.path
  // Steps are read by readSteps (better messages); zod only checks that they are a non-empty list.
  if (path[0] === 'spec' && path[1] === 'steps' && path.length > 2) return []
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(path)
    // A mapping of a million unknown keys yields one issue; only the listed problems get a suggestion.
    return issue.keys.slice(0, CONFIG_LIMITS.maxProblems).map((key) => {
      const guess = didYouMean(key, known)
      return {
        location: locateKey([...path, key]),
        path: dotted([...path, key]),
        message: `unknown field "${preview(key)}": expected one of ${known.join(', ')}`,
        ...(guess === undefined ? {} : {suggestion: `did you mean "${guess}"?`}),
      }
    })
  }
  const input = (issue as {input?: unknown}).input
  if (issue.code === 'invalid_value') {
    const values = issue.values.map(String)
    const guess = typeof input === 'string' ? didYouMean(input, values) : undefined
    return [{
      location: locate(path),
      path: dotted(path),
      message: `expected one of ${values.join(', ')}, got ${describe(input)}`,
      ...(guess === undefined ? {} : {suggestion: `did you mean "${guess}"?`}),
    }]
  }
  if (issue.code === 'invalid_type' && input === undefined) {
    return [{location: locate(path), path: dotted(path), message: `required field is missing: expected ${issue.expected}`}]
  }
  if (issue.code === 'invalid_type') {
    const message = issue.message.startsWith('Invalid input') ? `expected ${issue.expected}, got ${describe(input)}` : `${issue.message}, got ${describe(input)}`
    const suggestion = yaml11BooleanHint(issue.expected, input)
    return [{location: locate(path), path: dotted(path), message, ...(suggestion === undefined ? {} : {suggestion})}]
  }
  return [{location: locate(path), path: dotted(path), message: issue.message}]
}

/** Keys the schema allows at `path`, for "did you mean". */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: unknown = ReleaseDocumentSchema
  for (const segment of path) {
    schema = unwrap(schema)
    const def = (schema as {_zod: {def: Record<string, unknown>}})._zod.def
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[String(segment)]
    else if (def.type === 'array') schema = def.element
    else if (def.type === 'record') schema = def.valueType
    else return []
  }
  schema = unwrap(schema)
  const def = (schema as {_zod?: {def: Record<string, unknown>}} | undefined)?._zod?.def
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : []
}

function unwrap(schema: unknown): unknown {
  let current = schema as {_zod?: {def: Record<string, unknown>}} | undefined
  for (;;) {
    const def = current?._zod?.def
    if (def === undefined) return current
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable') current = def.innerType as typeof current
    else if (def.type === 'pipe') current = def.in as typeof current
    else if (def.type === 'union') current = ((def.options as unknown[]).find((o) => (o as {_zod: {def: {type: string}}})._zod.def.type === 'object') ?? current) as typeof current
    else return current
    if (def.type === 'union') return current
  }
}

/** Position of every field by dotted path: the value's, or the key's when the value is empty. */
function fieldLocations(yaml: ConfigYaml): Map<string, SourceLocation> {
  const locations = new Map<string, SourceLocation>()
  for (const field of yaml.fields()) locations.set(field.path.join('.'), yaml.at(field.valueOffset ?? field.keyOffset))
  return locations
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.column ?? 0) - (b.location?.column ?? 0) || a.path.localeCompare(b.path))
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.')
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${preview(JSON.stringify(value) ?? String(value), 80)}`
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

function isRouterKind(value: string): value is RouterKind {
  return (ROUTER_KINDS as readonly string[]).includes(value)
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
