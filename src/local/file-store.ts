/**
 * Rollout state in `.canary/<release>/state.json`, with a revision number for optimistic
 * concurrency. Written atomically (temp file, fsync, rename, fsync of the directory), so a reader
 * sees the old state or the new one, never a torn mix, even after a crash or on a full disk.
 *
 * Saving is split in two (`stage`, then `commit`) so the engine can act in between: staging
 * writes and fsyncs the temp file and checks the revision under the store's lock, which is where
 * a full disk, a read-only directory or missing permissions show up; the commit is a rename.
 *
 * The file is validated whole on load (its format marker, then every field against the state's
 * schema); a file that fails is reported by field with exit 3 and never overwritten.
 */
import {mkdir, open, rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'

import * as z from 'zod/mini'

import {ConfigError, ConflictError, InternalError, fileSystemError} from '../errors.js'
import type {RolloutStore, StagedSave, Versioned} from '../rollout/ports.js'
import {acquireLockFile} from './lock-file.js'
import {parseRecord, readRecordText, writeTempBeside, type RecordKind} from './json-record.js'

/** The state file's format marker; a file with another one is refused, not migrated silently. */
export const STATE_FORMAT = 'canary.rollout/v1'

const SAVE_LOCK_WAIT_MS = 2000

const STATE_KIND: RecordKind = {
  what: 'rollout state',
  suggestions: ['Inspect the file; canary will not use or overwrite it.', 'Move it aside (or run `canary down`, which removes it) to start over.'],
}

/** A RolloutStore on one JSON file; `schema` validates the stored value on load and before a save. */
export class FileRolloutStore<T> implements RolloutStore<T> {
  private readonly fileSchema

  constructor(
    readonly file: string,
    private readonly subject: string,
    private readonly schema: z.ZodMiniType<T>,
  ) {
    this.fileSchema = z.strictObject({format: z.literal(STATE_FORMAT), revision: z.int().check(z.minimum(1)), state: schema})
  }

  async load(_signal?: AbortSignal): Promise<Versioned<T> | undefined> {
    const stored = await this.read()
    return stored === undefined ? undefined : {value: stored.state, version: String(stored.revision)}
  }

  async save(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<Versioned<T>> {
    return (await this.stage(value, expectedVersion, signal)).commit(signal)
  }

  async stage(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<StagedSave<T>> {
    const content = this.serialize(value, expectedVersion)
    await mkdir(dirname(this.file), {recursive: true, mode: 0o700}).catch((error: unknown) => {
      throw fileSystemError(error, dirname(this.file), 'create directory')
    })
    // Held until commit or discard: nobody else commits between our revision check and our rename.
    const release = await acquireLockFile(`${this.file}.lock`, {waitMs: SAVE_LOCK_WAIT_MS, operation: 'save state', subject: this.subject, signal})
    let temp: string | undefined
    try {
      await this.checkRevision(expectedVersion)
      temp = await writeTempBeside(this.file, content.text)
    } catch (error) {
      await release()
      throw error
    }
    const staged = temp
    let settled = false
    const settle = async () => {
      settled = true
      await rm(staged, {force: true}).catch(() => undefined)
      await release().catch(() => undefined)
    }
    return {
      commit: async () => {
        if (settled) throw new InternalError(`${this.file}: a staged save was committed twice`)
        try {
          await this.checkRevision(expectedVersion)
          await commitTemp(staged, this.file)
          return {value, version: String(content.revision)}
        } finally {
          await settle()
        }
      },
      discard: async () => {
        if (!settled) await settle()
      },
    }
  }

  async remove(_signal?: AbortSignal): Promise<void> {
    await rm(this.file, {force: true}).catch((error: unknown) => {
      throw fileSystemError(error, this.file, 'remove rollout state')
    })
  }

  /** The file's text for `value`, checked against the schema first: what we write, we can read back. */
  private serialize(value: T, expectedVersion: string | undefined): {text: string; revision: number} {
    const revision = (expectedVersion === undefined ? 0 : Number(expectedVersion)) + 1
    const text = `${JSON.stringify({format: STATE_FORMAT, revision, state: value}, null, 2)}\n`
    try {
      parseRecord(this.file, text, this.fileSchema, STATE_KIND)
    } catch (error) {
      throw new InternalError(`${this.file}: the state canary was about to write does not match its own schema: ${(error as Error).message}`, {
        cause: error,
        subject: this.file,
        suggestions: ['Nothing was written or changed. This is a bug in canary: report it with the output of --verbose.'],
      })
    }
    return {text, revision}
  }

  private async checkRevision(expectedVersion: string | undefined): Promise<void> {
    const current = await this.read()
    const currentVersion = current === undefined ? undefined : String(current.revision)
    if (currentVersion !== expectedVersion) {
      throw new ConflictError(`${this.subject}: state changed by another operation while this one ran (revision ${currentVersion ?? 'none'}, expected ${expectedVersion ?? 'none'})`, {
        subject: this.file,
        suggestions: ['Run the command again; `canary status` shows the current state.'],
      })
    }
  }

  private async read(): Promise<{revision: number; state: T} | undefined> {
    const text = await readRecordText(this.file, STATE_KIND)
    if (text === undefined) return undefined
    // The format marker first: a file from another version is named as such, not as a list of field errors.
    let format: unknown
    try {
      format = (JSON.parse(text) as {format?: unknown} | null)?.format
    } catch {
      format = undefined
    }
    if (typeof format === 'string' && format !== STATE_FORMAT) {
      const version = (f: string) => Number(/\/v(\d+)$/.exec(f)?.[1] ?? Number.NaN)
      const newer = version(format) > version(STATE_FORMAT)
      throw new ConfigError(`rollout state ${this.file}: written by ${newer ? 'a newer' : 'another'} version of canary (format ${JSON.stringify(format)}, this canary reads ${STATE_FORMAT})`, [{location: {file: this.file}, path: 'format', message: `expected ${STATE_FORMAT}`}], {
        subject: this.file,
        suggestions: [newer ? 'Use the canary version that wrote it (or finish the rollout with it).' : STATE_KIND.suggestions[0]!, STATE_KIND.suggestions[1]!],
      })
    }
    return parseRecord(this.file, text, this.fileSchema, STATE_KIND) as {revision: number; state: T}
  }
}

/** Renames the temp file over `file`, then fsyncs the directory so the rename survives a crash. */
async function commitTemp(temp: string, file: string): Promise<void> {
  try {
    await rename(temp, file)
  } catch (error) {
    throw fileSystemError(error, file, 'replace')
  }
  // Once renamed, the new content is what every reader sees: a failing directory fsync only risks
  // losing the rename in a crash (the engine then repeats idempotent actions), so it is not a
  // failure of the save.
  const directory = await open(dirname(file), 'r').catch(() => undefined)
  await directory?.sync().catch(() => undefined)
  await directory?.close().catch(() => undefined)
}

/** Writes `file` so that readers see the old content or the new one, never a torn mix, even after a crash. */
export async function writeAtomically(file: string, content: string, mode = 0o600): Promise<void> {
  const temp = await writeTempBeside(file, content, {mode})
  try {
    await commitTemp(temp, file)
  } finally {
    await rm(temp, {force: true}).catch(() => undefined)
  }
}
