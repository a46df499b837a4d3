/**
 * Schema issues (zod/mini) in words, with the value found, for the stored records canary reads
 * back (local files, the state ConfigMap). zod/mini ships no message locale, and a message should
 * say what was expected and what is there. An unknown field is named by its own path.
 */
import type * as z from 'zod/mini'

/** One problem per issue (one per unknown key), with its dotted field path. */
export function schemaProblems(issues: readonly z.core.$ZodIssue[], root: unknown): {path: string; message: string}[] {
  return issues.flatMap((issue) => describeIssue(issue, root))
}

function describeIssue(issue: z.core.$ZodIssue, root: unknown): {path: string; message: string}[] {
  const path = issue.path.map(String)
  const at = path.join('.')
  const found = describeValue(valueAt(root, issue.path))
  switch (issue.code) {
    case 'invalid_type':
      return [{path: at, message: found === 'nothing' ? `missing (expected ${article(issue.expected)})` : `expected ${article(issue.expected)}, found ${found}`}]
    case 'invalid_value':
      return [{path: at, message: `${found === 'nothing' ? 'missing (expected' : 'expected'} ${issue.values.map((v) => JSON.stringify(v)).join(issue.values.length === 2 ? ' or ' : ', ')}${found === 'nothing' ? ')' : `, found ${found}`}`}]
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({path: [...path, key].join('.'), message: 'unknown field'}))
    case 'too_small':
      return [{path: at, message: `must be at least ${String(issue.minimum)}${issue.origin === 'string' ? ' characters long' : ''}, found ${found}`}]
    case 'too_big':
      return [{path: at, message: `must be at most ${String(issue.maximum)}, found ${found}`}]
    case 'invalid_format':
      return [{path: at, message: `has the wrong format, found ${found}`}]
    default:
      return [{path: at, message: `invalid, found ${found}`}]
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined
  return value
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'an object'
  const text = JSON.stringify(value) ?? String(value)
  return `${typeof value === 'number' && !Number.isFinite(value) ? String(value) : text.length > 40 ? `${text.slice(0, 40)}…` : text}`
}

function article(expected: string): string {
  const words: Record<string, string> = {int: 'an integer', number: 'a number', string: 'a string', object: 'an object', array: 'a list', boolean: 'true or false'}
  return words[expected] ?? expected
}

