/**
 * A cross-process lock made of one file that exists while its owner holds it.
 *
 * - **Taken atomically, owner included.** The owner record (pid, process identity, operation and a
 *   random id) is written to a private temp file and fsynced, then link(2)ed to the lock path:
 *   link fails with EEXIST when the lock exists, and a lock file is never seen empty or half
 *   written (the old create-then-write left a window in which a competitor took an empty file
 *   for an abandoned one).
 * - **Owner identity, not just a pid.** The record carries the owner's boot id and start time
 *   (src/local/processes.ts): a dead owner whose pid was reused by another program, or a zombie,
 *   is recognised as gone, so a lock left by `kill -9` never blocks the release.
 * - **Stale takeover through a claim.** To replace a lock whose owner is gone, a contender must
 *   first link its record to `<lock>.claim-<id of the stale record>`; exactly one contender can,
 *   and only that one rename(2)s its record over the lock (after re-reading it). Nobody ever
 *   deletes a lock it does not own, so two contenders can never both hold it. A claimer that dies
 *   before its rename leaves a claim that is superseded the same way, by the claim's own id.
 * - **A record that is not ours is never removed.** A lock file that is empty or invalid is
 *   treated as held while it is younger than WRITE_GRACE_MS (another program may be writing it),
 *   then refused with exit 3, naming the file and the field.
 */
import {createHash, randomBytes} from 'node:crypto'
import {link, lstat, mkdir, rename, rm} from 'node:fs/promises'
import {dirname} from 'node:path'

import * as z from 'zod/mini'

import {ConfigError, ConflictError, errnoOf, fileSystemError} from '../errors.js'
import {parseRecord, readRecordText, writeTempBeside, type RecordKind} from './json-record.js'
import {isRecordedProcessAlive, processIdentity} from './processes.js'

const MIN_POLL_MS = 5
const MAX_POLL_MS = 100
/** How long an empty or invalid lock file counts as being written by someone else. */
const WRITE_GRACE_MS = 2000
/** Claims of claims: more than a few means contenders keep dying mid-takeover. */
const MAX_CLAIM_DEPTH = 8

/** Owner facts written into the lock file. `id` and `identity` are absent in locks of older versions. */
const lockOwnerSchema = z.strictObject({
  id: z.optional(z.string().check(z.regex(/^[0-9a-f]{32}$/))),
  pid: z.int().check(z.minimum(1)),
  identity: z.optional(z.string()),
  operation: z.string(),
  sinceMs: z.number().check(z.minimum(0)),
})

type LockOwner = z.output<typeof lockOwnerSchema> & {readonly id: string}

const LOCK_KIND: RecordKind = {
  what: 'lock file',
  suggestions: ['canary writes its lock files whole, so another program wrote this one.', 'If no canary command is running for this release, remove the file and run the command again.'],
}

/** What the lock path holds right now. */
type Holder = {readonly kind: 'none'} | {readonly kind: 'owner'; readonly owner: LockOwner} | {readonly kind: 'unreadable'; readonly error: ConfigError; readonly ageMs: number}

/** Takes `file` as a lock, waiting up to `waitMs`; resolves with the release function. */
export async function acquireLockFile(file: string, options: {readonly waitMs: number; readonly operation: string; readonly subject: string; readonly signal: AbortSignal}): Promise<() => Promise<void>> {
  const deadline = Date.now() + options.waitMs
  await mkdir(dirname(file), {recursive: true, mode: 0o700}).catch((error: unknown) => {
    throw fileSystemError(error, dirname(file), 'create directory')
  })
  const identity = processIdentity(process.pid)
  const owner: LockOwner = {id: randomBytes(16).toString('hex'), pid: process.pid, ...(identity === undefined ? {} : {identity}), operation: options.operation, sinceMs: Date.now()}
  const record = await writeRecord(file, owner)
  let attempt = 0
  try {
    for (;;) {
      options.signal.throwIfAborted()
      if (await linkExclusive(record, file)) return releaser(file, owner.id)
      const holder = await readHolder(file)
      if (holder.kind === 'none') continue
      if (holder.kind === 'unreadable' && holder.ageMs >= WRITE_GRACE_MS) throw holder.error
      if (holder.kind === 'owner' && !isRecordedProcessAlive(holder.owner.pid, holder.owner.identity)) {
        if (await supersede(file, holder.owner, record)) return releaser(file, owner.id)
        // Another contender is taking it over: wait like for a live holder.
      }
      if (Date.now() >= deadline) throw busy(file, holder, options.subject)
      // Backoff with jitter: many waiters (a CI matrix on one release) must not poll in lockstep.
      await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_POLL_MS, MIN_POLL_MS * 2 ** attempt++) * (0.5 + Math.random() / 2)))
    }
  } finally {
    await rm(record, {force: true}).catch(() => undefined)
  }
}

function busy(file: string, holder: Holder, subject: string): ConflictError {
  const who = holder.kind === 'owner' ? `${holder.owner.operation}, pid ${holder.owner.pid}` : `lock file ${file} is being written`
  return new ConflictError(`${subject}: another operation is in progress (${who})`, {
    subject,
    suggestions: ['Wait for it to finish and try again.', '`canary status` shows what the rollout is doing.'],
  })
}

/**
 * Replaces the lock held by `stale` (whose owner is gone) with `record`; false when another
 * contender is doing it, or did it first. See the file comment.
 */
async function supersede(file: string, stale: LockOwner, record: string): Promise<boolean> {
  const chain: LockOwner[] = [stale]
  let claimed: string | undefined
  try {
    for (let depth = 0; depth < MAX_CLAIM_DEPTH; depth++) {
      const claim = claimPath(file, chain[chain.length - 1]!.id)
      if (await linkExclusive(record, claim)) {
        claimed = claim
        // Only the winner of the stale record's claim (or of a claim on a dead claimer) gets here,
        // and a lock with the stale id changes hands only through that claim: re-read, then replace.
        const holder = await readHolder(file)
        if (holder.kind !== 'owner' || holder.owner.id !== stale.id) return false
        await rename(record, file).catch((error: unknown) => {
          throw fileSystemError(error, file, 'take over stale lock')
        })
        // The lock never returns to these ids, so their claims are done with.
        for (const dead of chain) await rm(claimPath(file, dead.id), {force: true}).catch(() => undefined)
        return true
      }
      const claimer = await readHolder(claim)
      // Claims are linked whole, so an unreadable one is someone else's file: leave it to the grace rule on the lock.
      if (claimer.kind !== 'owner') return false
      if (isRecordedProcessAlive(claimer.owner.pid, claimer.owner.identity)) return false
      chain.push(claimer.owner)
    }
    return false
  } finally {
    if (claimed !== undefined) await rm(claimed, {force: true}).catch(() => undefined)
  }
}

function claimPath(file: string, id: string): string {
  return `${file}.claim-${id}`
}

/** The release function: removes the lock only while it is still ours. */
function releaser(file: string, id: string): () => Promise<void> {
  let released = false
  return async () => {
    if (released) return
    released = true
    const holder = await readHolder(file).catch(() => undefined)
    if (holder?.kind === 'owner' && holder.owner.id === id) await rm(file, {force: true})
  }
}

async function readHolder(file: string): Promise<Holder> {
  let text: string | undefined
  try {
    text = await readRecordText(file, LOCK_KIND)
    if (text === undefined) return {kind: 'none'}
    const owner = parseRecord(file, text, lockOwnerSchema, LOCK_KIND)
    // Locks of older versions have no id: their content identifies them just as well.
    return {kind: 'owner', owner: {...owner, id: owner.id ?? createHash('sha256').update(text).digest('hex').slice(0, 32)}}
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    const modifiedMs = await lstat(file).then((s) => s.mtimeMs, () => undefined)
    if (modifiedMs === undefined) return {kind: 'none'}
    return {kind: 'unreadable', error, ageMs: Date.now() - modifiedMs}
  }
}

/** The owner record in a private, fsynced temp file beside the lock. */
function writeRecord(file: string, owner: LockOwner): Promise<string> {
  return writeTempBeside(file, JSON.stringify(owner), {tag: owner.id, verb: 'write lock'})
}

/** link(2): creates `to` as another name of `from` unless `to` exists. */
async function linkExclusive(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to)
    return true
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false
    throw fileSystemError(error, to, 'create lock')
  }
}
