/**
 * Reading the small JSON files canary keeps in `.canary/<release>/` (rollout state, daemon
 * address book, replica process groups, the operation lock). Every one is validated whole against
 * its schema when it is read: a file that is not a regular file, is not JSON, or has a wrong,
 * missing or unknown field is refused with exit 3, naming the file and each field, and is never
 * used or overwritten. A symbolic link is refused rather than followed (these files are ours,
 * written by rename, so a link is someone else's doing); a FIFO is refused without blocking.
 */
import {constants} from 'node:fs'
import {open} from 'node:fs/promises'

import type * as z from 'zod/mini'

import {ConfigError, errnoOf, fileSystemError, type ConfigProblem} from '../errors.js'

/** Larger than any file canary writes here (a long rollout's state is tens of KB). */
const MAX_RECORD_BYTES = 16 * 1024 * 1024

/** What the file is, for messages: `rollout state`, `daemon record`… */
export interface RecordKind {
  readonly what: string
  /** How to recover, shown after the problems. */
  readonly suggestions: readonly string[]
}

/** The raw text of `file`, or undefined when it does not exist; ConfigError for a non-file, IoError for an OS failure. */
export async function readRecordText(file: string, kind: RecordKind): Promise<string | undefined> {
  let handle
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    const errno = errnoOf(error)
    if (errno === 'ENOENT') return undefined
    if (errno === 'ELOOP') throw refuse(file, kind, 'is a symbolic link; canary does not follow links for its own files')
    throw fileSystemError(error, file, `read ${kind.what}`)
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw refuse(file, kind, `is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}, not a file canary wrote`)
    if (stat.size > MAX_RECORD_BYTES) throw refuse(file, kind, `is ${stat.size} bytes, more than canary ever writes (${MAX_RECORD_BYTES})`)
    return await handle.readFile('utf8')
  } catch (error) {
    throw fileSystemError(error, file, `read ${kind.what}`)
  } finally {
    await handle.close()
  }
}

/** `file` parsed and validated against `schema`; undefined when it does not exist. */
export async function readRecord<S extends z.ZodMiniType>(file: string, schema: S, kind: RecordKind): Promise<z.output<S> | undefined> {
  const text = await readRecordText(file, kind)
  return text === undefined ? undefined : parseRecord(file, text, schema, kind)
}

/** `text` (the content of `file`) parsed and validated against `schema`. */
export function parseRecord<S extends z.ZodMiniType>(file: string, text: string, schema: S, kind: RecordKind): z.output<S> {
  if (text.trim() === '') throw refuse(file, kind, 'is empty')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw refuse(file, kind, `is not valid JSON (${(error as Error).message})`)
  }
  const result = schema.safeParse(parsed)
  if (result.success) return result.data
  const problems: ConfigProblem[] = result.error.issues.flatMap((issue) => describeIssue(issue, parsed).map((p) => ({location: {file}, ...p})))
  const first = problems[0]
  const fields = problems.map((p) => p.path === '' ? '(top level)' : p.path).join(', ')
  throw new ConfigError(`${kind.what} ${file}: corrupt: ${problems.length === 1 && first !== undefined ? `${first.path === '' ? '' : `field ${first.path}: `}${first.message}` : `${problems.length} problems (fields ${fields})`}`, problems, {
    subject: file,
    suggestions: kind.suggestions,
  })
}

/**
 * One schema issue in words, with the value found (zod/mini ships no message locale, and a
 * message should say what was expected and what is there). An unknown field is named by its own path.
 */
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

function refuse(file: string, kind: RecordKind, why: string): ConfigError {
  return new ConfigError(`${kind.what} ${file}: ${why}`, [], {subject: file, suggestions: kind.suggestions})
}
