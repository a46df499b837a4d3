/**
 * A cross-process lock made of a file created with O_EXCL (`wx`). It holds the owner's pid, so a
 * lock left by a killed process (kill -9) is recognised as stale and taken over instead of
 * blocking the release forever.
 */
import {open, readFile, rm} from 'node:fs/promises'

import {ConflictError} from '../errors.js'
import {isProcessAlive} from './processes.js'

const POLL_MS = 25

/** Owner facts written into the lock file. */
interface LockOwner {
  readonly pid: number
  readonly operation: string
  readonly sinceMs: number
}

/** Takes `file` as a lock, waiting up to `waitMs`; resolves with the release function. */
export async function acquireLockFile(file: string, options: {readonly waitMs: number; readonly operation: string; readonly subject: string; readonly signal: AbortSignal}): Promise<() => Promise<void>> {
  const deadline = Date.now() + options.waitMs
  for (;;) {
    options.signal.throwIfAborted()
    try {
      const handle = await open(file, 'wx', 0o600)
      const owner: LockOwner = {pid: process.pid, operation: options.operation, sinceMs: Date.now()}
      await handle.writeFile(JSON.stringify(owner))
      await handle.close()
      let released = false
      return async () => {
        if (released) return
        released = true
        await rm(file, {force: true})
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const owner = await readOwner(file)
    if (owner === undefined || !isProcessAlive(owner.pid)) {
      // Stale (the owner died) or half-written by an owner that died at once: take it over.
      await rm(file, {force: true})
      continue
    }
    if (Date.now() >= deadline) {
      throw new ConflictError(`${options.subject}: another operation is in progress (${owner.operation}, pid ${owner.pid})`, {
        subject: options.subject,
        suggestions: ['Wait for it to finish and try again.', '`canary status` shows what the rollout is doing.'],
      })
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<LockOwner>
    return typeof parsed.pid === 'number' ? {pid: parsed.pid, operation: String(parsed.operation ?? 'unknown'), sinceMs: Number(parsed.sinceMs ?? 0)} : undefined
  } catch {
    return undefined
  }
}
