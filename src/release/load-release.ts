/**
 * Reads a release spec: YAML with positions (config-file/) → shape check (schema.ts) and the
 * rules that span fields (release-rules.ts) → a normalized, readonly `Release`
 * (normalise-release.ts). Every problem is collected and thrown together in one ConfigError, each
 * with file:line:col, the field path, what was expected and a suggestion.
 */
import {configFileError, describeValue, fieldLocations, locatedProblem, schemaProblems, sortProblems, type IssueWording} from '../config-file/config-problems.js'
import {didYouMean} from '../config-file/did-you-mean.js'
import {preview, type ConfigLimits} from '../config-file/limits.js'
import {parseConfigYaml, yaml11BooleanHint} from '../config-file/parse-config-yaml.js'
import {readConfigFile} from '../config-file/read-config-file.js'
import {NotFoundError, type ConfigProblem, type SourceLocation} from '../errors.js'
import {normaliseRelease} from './normalise-release.js'
import type {Release, RouterKind} from './release.js'
import {releaseRuleProblems} from './release-rules.js'
import {routerProblems} from '../routers/capabilities.js'
import type {RouterFeatures} from '../routers/router-definition.js'
import {RELEASE_API_VERSION, ReleaseDocumentSchema, type ReleaseDocument} from './schema.js'

/** A parsed release and where it came from. */
export interface LoadedRelease {
  /** The file it was read from (as given). */
  readonly file: string
  /** The normalized release. */
  readonly release: Release
  /** Position of every field in the file, by dotted path (`spec.match.header`), for later problems. */
  readonly locations: ReadonlyMap<string, SourceLocation>
  /** What the spec asks of a router, for checking it against another router than its own. */
  readonly routerFeatures: RouterFeatures
}

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
    throw configFileError('release spec', file, problems, 'Fix the problems listed above, then run `canary validate` again.')
  }

  if (yaml.problems.length > 0) fail(yaml.problems)
  if (yaml.empty) {
    fail([{location: {file, line: 1, column: 1}, path: '', message: 'the file is empty: expected a Release document', suggestion: 'run `canary init` to write a starter spec'}])
  }
  const raw: unknown = yaml.value
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    fail([{location: yaml.locate([]), path: '', message: `expected a Release document (a mapping with apiVersion ${RELEASE_API_VERSION} and kind Release), got ${describeValue(raw)}`}])
  }
  const top = raw as Record<string, unknown>
  if (top.kind !== 'Release' || top.apiVersion !== RELEASE_API_VERSION) {
    const field = top.kind !== 'Release' ? 'kind' : 'apiVersion'
    fail([{
      location: 'kind' in top || 'apiVersion' in top ? yaml.locate([field]) : yaml.locate([]),
      path: field,
      message: `this is not a Release: expected apiVersion: ${RELEASE_API_VERSION} and kind: Release, got ${describeValue(top.apiVersion)} / ${describeValue(top.kind)}`,
      suggestion: 'canary reads release specs written by `canary init`; Kubernetes manifests go to kubectl',
    }])
  }

  const parsed = ReleaseDocumentSchema.safeParse(raw, {reportInput: true})
  // Steps are read by readSteps (better messages); the schema only checks that they are a non-empty list.
  const issues = parsed.success ? [] : parsed.error.issues.filter(({path}) => !(path[0] === 'spec' && path[1] === 'steps' && path.length > 2))
  const problems = schemaProblems(issues, ReleaseDocumentSchema, yaml, RELEASE_WORDING)
  const rules = releaseRuleProblems((top.spec ?? {}) as Record<string, unknown>)
  for (const problem of rules.problems) problems.push(locatedProblem(yaml.locate(problem.at, problem.locateKey === true ? 'key' : 'value'), problem.at, problem))
  if (problems.length > 0 || !parsed.success) fail(sortProblems(problems))

  const release = normaliseRelease((parsed as {data: ReleaseDocument}).data)
  return {file, release, locations: fieldLocations(yaml), routerFeatures: rules.features}
}

/** The problems of rendering `release` with `router` (which may differ from the spec's), with positions. */
export function routerProblemsFor(loaded: LoadedRelease, router: RouterKind): ConfigProblem[] {
  return routerProblems(router, loaded.routerFeatures).map((problem) => locatedProblem(loaded.locations.get(problem.at.join('.')) ?? {file: loaded.file}, problem.at, problem))
}

/** The release spec's words: lower case, `expected … got …`, a did-you-mean wherever a name was misspelt. */
const RELEASE_WORDING: IssueWording = {
  unknownKey: (key, known, guess) => ({message: `unknown field "${preview(key)}": expected one of ${known.join(', ')}`, ...(guess === undefined ? {} : {suggestion: `did you mean "${guess}"?`})}),
  issue: (issue, input) => {
    if (issue.code === 'invalid_value') {
      const values = issue.values.map(String)
      const guess = typeof input === 'string' ? didYouMean(input, values) : undefined
      return {message: `expected one of ${values.join(', ')}, got ${describeValue(input)}`, ...(guess === undefined ? {} : {suggestion: `did you mean "${guess}"?`})}
    }
    if (issue.code === 'invalid_type' && input === undefined) return {message: `required field is missing: expected ${issue.expected}`}
    if (issue.code === 'invalid_type') {
      const suggestion = yaml11BooleanHint(issue.expected, input)
      return {message: issue.message.startsWith('Invalid input') ? `expected ${issue.expected}, got ${describeValue(input)}` : `${issue.message}, got ${describeValue(input)}`, ...(suggestion === undefined ? {} : {suggestion})}
    }
    return {message: issue.message}
  },
}
