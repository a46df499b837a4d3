/**
 * YAML templates with `{{placeholder}}` values. A template is parsed as YAML *first*; values are
 * then put into the parsed tree, never into the text. So a value containing `:`, quotes, `#` or
 * newlines is just a string in the result and cannot break or inject YAML, whatever it holds.
 *
 * - A scalar that is exactly `"{{key}}"` is replaced by the value, which may be a string, number,
 *   mapping or list; an undefined value removes the mapping entry (or list item).
 * - `{{key}}` inside a longer string is replaced by the value's text (strings and numbers only).
 * Placeholders must be quoted in the template: unquoted, `{{` opens a YAML flow mapping.
 */
import {parseDocument} from 'yaml'

import {ConfigError, type ConfigProblem} from '../errors.js'
import {didYouMean} from '../config-file/did-you-mean.js'

/** A parsed template. */
export interface Template {
  /** Template name, e.g. `deployment`. */
  readonly name: string
  /** File it came from (bundled or `--templates DIR`). */
  readonly file: string
  /** Whether it came from a user's `--templates` directory. */
  readonly overridden: boolean
  /** The parsed YAML tree, placeholders still in it. */
  readonly tree: unknown
  /** Placeholder names used. */
  readonly placeholders: readonly string[]
}

/** Values for one fill; undefined removes the field. */
export type TemplateValues = Readonly<Record<string, unknown>>

const WHOLE = /^\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}$/
const INNER = /\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g
const ANY_BRACES = /\{\{|\}\}/

/** Parses a template; throws ConfigError for YAML errors or placeholders not in `allowed`. */
export function parseTemplate(text: string, file: string, name: string, allowed: readonly string[], overridden = false): Template {
  const doc = parseDocument(text, {uniqueKeys: true})
  const problems: ConfigProblem[] = doc.errors.map((error) => ({location: {file, ...linePos(text, error.pos[0])}, path: '', message: `YAML syntax error: ${error.message.split('\n')[0] ?? ''}`}))
  const tree: unknown = problems.length === 0 ? doc.toJS() : undefined
  const placeholders = new Set<string>()
  const visit = (node: unknown, path: string): void => {
    if (typeof node === 'string') {
      const keys = [...node.matchAll(INNER)].map((m) => m[1] ?? '')
      if (keys.length === 0 && ANY_BRACES.test(node)) problems.push({location: {file}, path, message: `malformed placeholder in "${node}": expected {{name}}`})
      for (const key of keys) {
        placeholders.add(key)
        if (!allowed.includes(key)) {
          const guess = didYouMean(key, allowed)
          problems.push({location: {file}, path, message: `unknown placeholder {{${key}}} in template ${name}: expected one of ${allowed.join(', ')}`, ...(guess === undefined ? {} : {suggestion: `did you mean {{${guess}}}?`})})
        }
      }
    } else if (Array.isArray(node)) {
      node.forEach((item, index) => visit(item, `${path}.${index}`))
    } else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (ANY_BRACES.test(key)) problems.push({location: {file}, path: `${path}.${key}`, message: 'placeholders are allowed in values only, not in keys (quote the value: key: "{{name}}")'})
        visit(value, path === '' ? key : `${path}.${key}`)
      }
    }
  }
  visit(tree, '')
  if (problems.length === 0 && (tree === null || typeof tree !== 'object' || Array.isArray(tree))) {
    problems.push({location: {file}, path: '', message: 'expected a template for one Kubernetes object (a mapping)'})
  }
  if (problems.length > 0) {
    throw new ConfigError(`template ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} found`, problems, {subject: file, suggestions: ['Compare it with the bundled template of the same name in templates/.']})
  }
  return {name, file, overridden, tree, placeholders: [...placeholders].sort()}
}

/** Fills a template; pure. Throws an Error if a value cannot go inside a string (a bug in the caller). */
export function fillTemplate(template: Template, values: TemplateValues): Record<string, unknown> {
  return fill(template.tree, values) as Record<string, unknown>
}

const REMOVE = Symbol('remove')

function fill(node: unknown, values: TemplateValues): unknown {
  if (typeof node === 'string') {
    const whole = WHOLE.exec(node)
    if (whole !== null) {
      const value = values[whole[1] ?? '']
      return value === undefined ? REMOVE : structuredClone(value)
    }
    return node.replace(INNER, (_, key: string) => {
      const value = values[key]
      if (typeof value === 'string' || typeof value === 'number') return String(value)
      throw new Error(`placeholder {{${key}}} inside a string needs a string or number, got ${value === undefined ? 'nothing' : typeof value}`)
    })
  }
  if (Array.isArray(node)) return node.map((item) => fill(item, values)).filter((item) => item !== REMOVE)
  if (node !== null && typeof node === 'object') {
    const result: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(node)) {
      const filled = fill(value, values)
      if (filled !== REMOVE) result[key] = filled
    }
    return result
  }
  return node
}

function linePos(text: string, offset: number): {line: number; column: number} {
  const before = text.slice(0, offset).split('\n')
  return {line: before.length, column: (before.at(-1)?.length ?? 0) + 1}
}
