/**
 * Reading the small JSON files canary keeps in `.canary/<release>/` (rollout state, daemon
 * address book, replica process groups, the operation lock). Every one is validated whole against
 * its schema when it is read: a file that is not a regular file, is not JSON, or has a wrong,
 * missing or unknown field is refused with exit 3, naming the file and each field, and is never
 * used or overwritten. A symbolic link is refused rather than followed (these files are ours,
 * written by rename, so a link is someone else's doing); a FIFO is refused without blocking.
 */
import {constants} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {open, rm} from 'node:fs/promises'
import {basename, dirname} from 'node:path'

import type * as z from 'zod/mini'

import {ConfigError, errnoOf, fileSystemError, type ConfigProblem} from '../errors.js'
import {schemaProblems} from '../rollout/schema-problems.js'

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
  const problems: ConfigProblem[] = schemaProblems(result.error.issues, parsed).map((p) => ({location: {file}, ...p}))
  const first = problems[0]
  const fields = problems.map((p) => p.path === '' ? '(top level)' : p.path).join(', ')
  throw new ConfigError(`${kind.what} ${file}: corrupt: ${problems.length === 1 && first !== undefined ? `${first.path === '' ? '' : `field ${first.path}: `}${first.message}` : `${problems.length} problems (fields ${fields})`}`, problems, {
    subject: file,
    suggestions: kind.suggestions,
  })
}

function refuse(file: string, kind: RecordKind, why: string): ConfigError {
  return new ConfigError(`${kind.what} ${file}: ${why}`, [], {subject: file, suggestions: kind.suggestions})
}

/**
 * `content` in a private, fsynced temp file beside `file`, to be renamed or linked into place;
 * returns its path. A full disk leaves a partly written temp file: it is never left behind.
 */
export async function writeTempBeside(file: string, content: string, options: {readonly tag?: string; readonly mode?: number; readonly verb?: string} = {}): Promise<string> {
  const temp = `${dirname(file)}/.${basename(file)}.${options.tag ?? randomBytes(6).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o600)
    try {
      await handle.writeFile(content)
      await handle.sync()
    } finally {
      await handle.close()
    }
    return temp
  } catch (error) {
    await rm(temp, {force: true}).catch(() => undefined)
    throw fileSystemError(error, file, options.verb ?? 'write')
  }
}
