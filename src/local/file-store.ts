/**
 * Rollout state in `.canary/<release>/state.json`: written atomically (temp file, fsync, rename,
 * fsync of the directory) under a lock, with a revision number for optimistic concurrency. A file
 * that does not parse, or comes from another format version, is reported and never overwritten.
 */
import {mkdir, open, readFile, rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'

import {ConfigError, ConflictError} from '../errors.js'
import type {RolloutStore, Versioned} from '../rollout/ports.js'
import {acquireLockFile} from './lock-file.js'

/** The state file's format marker; a file with another one is refused, not migrated silently. */
export const STATE_FORMAT = 'canary.rollout/v1'

interface StateFile<T> {
  readonly format: string
  readonly revision: number
  readonly state: T
}

const SAVE_LOCK_WAIT_MS = 2000

/** A RolloutStore on one JSON file. */
export class FileRolloutStore<T> implements RolloutStore<T> {
  constructor(
    readonly file: string,
    private readonly subject: string,
  ) {}

  async load(_signal?: AbortSignal): Promise<Versioned<T> | undefined> {
    const stored = await this.read()
    return stored === undefined ? undefined : {value: stored.state, version: String(stored.revision)}
  }

  async save(value: T, expectedVersion: string | undefined, signal: AbortSignal): Promise<Versioned<T>> {
    await mkdir(dirname(this.file), {recursive: true, mode: 0o700})
    const release = await acquireLockFile(`${this.file}.lock`, {waitMs: SAVE_LOCK_WAIT_MS, operation: 'save state', subject: this.subject, signal})
    try {
      const current = await this.read()
      const currentVersion = current === undefined ? undefined : String(current.revision)
      if (currentVersion !== expectedVersion) {
        throw new ConflictError(`${this.subject}: state changed by another operation while this one ran (revision ${currentVersion ?? 'none'}, expected ${expectedVersion ?? 'none'})`, {
          subject: this.file,
          suggestions: ['Run the command again; `canary status` shows the current state.'],
        })
      }
      const revision = (current?.revision ?? 0) + 1
      const content: StateFile<T> = {format: STATE_FORMAT, revision, state: value}
      await writeAtomically(this.file, `${JSON.stringify(content, null, 2)}\n`)
      return {value, version: String(revision)}
    } finally {
      await release()
    }
  }

  async remove(_signal?: AbortSignal): Promise<void> {
    await rm(this.file, {force: true})
  }

  private async read(): Promise<StateFile<T> | undefined> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
    const refuse = (why: string): never => {
      throw new ConfigError(`rollout state ${this.file}: ${why}`, [], {
        subject: this.file,
        suggestions: [`Inspect the file; canary will not overwrite it.`, `Move it aside (or run \`canary down\`, which removes it) to start over.`],
      })
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (error) {
      return refuse(`corrupt: not valid JSON (${(error as Error).message})`)
    }
    const file = parsed as Partial<StateFile<T>>
    if (typeof file !== 'object' || file === null) return refuse('corrupt: not a JSON object')
    if (file.format !== STATE_FORMAT) return refuse(`written by another version of canary (format ${JSON.stringify(file.format)}, expected ${STATE_FORMAT})`)
    if (typeof file.revision !== 'number' || typeof file.state !== 'object' || file.state === null) return refuse('corrupt: missing revision or state')
    return file as StateFile<T>
  }
}

let tempCounter = 0

/** Writes `file` so that readers see the old content or the new one, never a torn mix, even after a crash. */
export async function writeAtomically(file: string, content: string, mode = 0o600): Promise<void> {
  const temp = `${file}.${process.pid}.${++tempCounter}.tmp`
  const handle = await open(temp, 'w', mode)
  try {
    await handle.writeFile(content)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, file)
  const directory = await open(dirname(file), 'r')
  try {
    await directory.sync()
  } finally {
    await directory.close()
  }
}
