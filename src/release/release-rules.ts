/**
 * The rules of a release spec that span fields (the schema in schema.ts checks each field alone):
 * target and ingress sections, header match, steps against the total weight, and what the chosen
 * router can do. They run on the raw data, so a spec with shape problems lists these too.
 */
import {asRecord} from '../config-file/config-problems.js'
import {DEFAULT_TOTAL_WEIGHT} from '../rollout/core/weights.js'
import {routerProblems, routerRequiredIngressField} from '../routers/capabilities.js'
import type {RouterFeatures, UsedFeature} from '../routers/router-definition.js'
import {ROUTER_KINDS, type HeaderMatch, type RouterKind} from './release.js'
import {readSteps} from './steps.js'

/** A problem found by a rule, at a path of the document (located by the caller). */
export interface RuleProblem {
  readonly at: readonly (string | number)[]
  readonly message: string
  readonly suggestion?: string
  /** Point at the key rather than its value (an unknown key). */
  readonly locateKey?: boolean
}

/** Which header rule a `{name, value?, pattern?}` match is: a pattern, an exact value, or the `always`/`never` switch. */
export function headerRuleKind(header: {readonly value?: unknown; readonly pattern?: unknown}): HeaderMatch['kind'] {
  if (header.pattern !== undefined) return 'pattern'
  return header.value !== undefined && header.value !== 'always' ? 'exact' : 'always-never'
}

const HEADER_FEATURES = {'always-never': 'headerAlwaysNever', exact: 'headerExact', pattern: 'headerPattern'} as const

/** The problems of `spec` (the raw `spec:` mapping) that span fields, and the router features it uses. */
export function releaseRuleProblems(spec: Record<string, unknown>): {problems: RuleProblem[]; features: RouterFeatures} {
  const problems: RuleProblem[] = []
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
    problems.push(...headerProblems(header))
    for (const text of [header.name, header.value, header.pattern]) if (typeof text === 'string' && text !== '') headerTexts.push(text)
    used.push({feature: HEADER_FEATURES[headerRuleKind(header)], path: 'spec.match.header'})
  }
  if (match?.cookie !== undefined) used.push({feature: 'cookie', path: 'spec.match.cookie'})
  if (spec.sticky !== undefined) used.push({feature: 'sticky', path: 'spec.sticky'})
  if (spec.mirror !== undefined) used.push({feature: 'mirror', path: 'spec.mirror'})
  const features: RouterFeatures = {used, headerTexts, weights, totalWeight}

  problems.push(...targetProblems(spec))
  const router = asRecord(spec.ingress)?.router
  if (typeof router === 'string' && isRouterKind(router)) problems.push(...routerProblems(router, features))
  return {problems, features}
}

function headerProblems(header: Record<string, unknown>): RuleProblem[] {
  const problems: RuleProblem[] = []
  if (typeof header.name !== 'string' || header.name === '') {
    problems.push({at: ['spec', 'match', 'header'], message: 'header match without a name: expected name, e.g. {name: X-Canary, value: always}'})
  }
  if (header.value !== undefined && header.pattern !== undefined) {
    problems.push({at: ['spec', 'match', 'header', 'pattern'], message: 'header match has both value and pattern: expected one (ingress-nginx silently ignores the pattern when a value is set)', suggestion: 'keep value for an exact match, or pattern for a regex'})
  }
  if (header.value === 'never') {
    problems.push({at: ['spec', 'match', 'header', 'value'], message: 'value "never" is reserved: with value always (or no value) a request header of "never" already keeps the request on stable', suggestion: 'use value: always'})
  }
  if (typeof header.pattern === 'string') {
    try {
      new RegExp(header.pattern)
    } catch (error) {
      problems.push({at: ['spec', 'match', 'header', 'pattern'], message: `regular expression does not compile: ${(error as Error).message}`, suggestion: 'checked as a JavaScript RegExp; ingress-nginx uses PCRE and Traefik/Gateway implementations use RE2, so keep to the common subset'})
    }
  }
  return problems
}

/** Where the release runs: exactly one way to start it locally, an ingress (and what its router requires there, such as a gateway) on Kubernetes. */
function targetProblems(spec: Record<string, unknown>): RuleProblem[] {
  const problems: RuleProblem[] = []
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
      problems.push({at: ['spec', 'ingress'], message: `the kubernetes target needs spec.ingress.router: expected one of ${ROUTER_KINDS.join(', ')}`})
    }
  }
  const required = typeof ingress?.router === 'string' && isRouterKind(ingress.router) ? routerRequiredIngressField(ingress.router) : undefined
  if (required !== undefined && ingress?.[required.field] === undefined) {
    problems.push({at: ['spec', 'ingress'], message: `router ${String(ingress?.router)} needs spec.ingress.${required.field}: expected ${required.expected} ${required.purpose}`})
  }
  return problems
}

function isRouterKind(value: string): value is RouterKind {
  return (ROUTER_KINDS as readonly string[]).includes(value)
}
