/**
 * From a schema check to located problems, for both config files (the release spec and the proxy
 * config): each zod issue becomes a ConfigProblem at the field's file:line:col, an unknown key
 * points at the key and gets the known keys there and a did-you-mean. Each file keeps its own
 * wording (messages are part of the CLI's output); what is found, where, and the guess are shared.
 */
import type {z} from 'zod'

import {ConfigError, type ConfigProblem, type SourceLocation} from '../errors.js'
import {didYouMean} from './did-you-mean.js'
import {CONFIG_LIMITS, preview} from './limits.js'
import {capProblems, type ConfigYaml} from './parse-config-yaml.js'

/** What a problem says; where it is comes from the file. */
export interface ProblemText {
  readonly message: string
  readonly suggestion?: string
}

/** How one config file words the problems its schema finds. */
export interface IssueWording {
  /** A key the schema does not allow at its place: `known` are those it allows, `guess` the closest one. */
  readonly unknownKey: (key: string, known: readonly string[], guess: string | undefined) => ProblemText
  /** Any other issue (wrong type, bad value, missing field…); `input` is the value found. */
  readonly issue: (issue: z.core.$ZodIssue, input: unknown) => ProblemText
}

/** Every issue as located problems (unknown keys one problem each, the first CONFIG_LIMITS.maxProblems of a mapping). */
export function schemaProblems(issues: readonly z.core.$ZodIssue[], schema: z.ZodType, yaml: ConfigYaml, wording: IssueWording): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  for (const issue of issues) {
    const path = issue.path.map(String)
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, path)
      // A mapping of a million unknown keys yields one issue; only the listed problems get a suggestion.
      for (const key of issue.keys.slice(0, CONFIG_LIMITS.maxProblems)) {
        problems.push(locatedProblem(yaml.locate([...path, key], 'key'), [...path, key], wording.unknownKey(key, known, didYouMean(key, known))))
      }
      continue
    }
    problems.push(locatedProblem(yaml.locate(path), path, wording.issue(issue, (issue as {input?: unknown}).input)))
  }
  return problems
}

/** A ConfigProblem (no `suggestion` key when there is none, so --json stays as it was). */
export function locatedProblem(location: SourceLocation, path: readonly PropertyKey[], text: ProblemText): ConfigProblem {
  return {location, path: dottedPath(path), message: text.message, ...(text.suggestion === undefined ? {} : {suggestion: text.suggestion})}
}

/** Keys the schema allows at `path` (through optional, default, nullable, pipe, and a union's object member). */
export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown = schema
  for (const segment of path) {
    const def = definition(unwrap(current))
    if (def?.type === 'object') current = (def.shape as Record<string, unknown>)[String(segment)]
    else if (def?.type === 'array') current = def.element
    else if (def?.type === 'record') current = def.valueType
    else return []
  }
  const def = definition(unwrap(current))
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : []
}

function unwrap(schema: unknown): unknown {
  let current = schema
  // Bounded: schemas nest wrappers a few levels at most.
  for (let i = 0; i < 10; i++) {
    const def = definition(current)
    if (def === undefined) return current
    if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable') current = def.innerType
    else if (def.type === 'pipe') current = def.in
    // `cookie: name | {name}`: the keys are the object member's.
    else if (def.type === 'union') return (def.options as unknown[]).find((option) => definition(option)?.type === 'object') ?? current
    else return current
  }
  return current
}

function definition(schema: unknown): Record<string, unknown> | undefined {
  return (schema as {_zod?: {def: Record<string, unknown>}} | undefined)?._zod?.def
}

/** In file order (line, column), then by field path: the order a reader fixes them in. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.column ?? 0) - (b.location?.column ?? 0) || a.path.localeCompare(b.path))
}

/**
 * The one error for a config file with problems: `<label> <file>: N problems found`, every problem
 * listed (up to CONFIG_LIMITS.maxProblems), and what to do next.
 */
export function configFileError(label: string, file: string, problems: readonly ConfigProblem[], next: string): ConfigError {
  return new ConfigError(`${label} ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} found`, capProblems(problems), {subject: file, suggestions: [next]})
}

/** Position of every field by dotted path: the value's, or the key's when the value is empty. */
export function fieldLocations(yaml: ConfigYaml): Map<string, SourceLocation> {
  const locations = new Map<string, SourceLocation>()
  for (const field of yaml.fields()) locations.set(field.path.join('.'), yaml.at(field.valueOffset ?? field.keyOffset))
  return locations
}

export function dottedPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.')
}

/** A value as a message shows it: `a mapping`, `a list`, `string "ngnix"`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${preview(JSON.stringify(value) ?? String(value), 80)}`
}

/** A YAML mapping as a record; undefined for anything else (checks on data the schema has not accepted yet). */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}
