/**
 * One contender of the lock race (test/local/lock-file.test.ts), run as its own process:
 * `node lock-contender.mjs LOCK MARKER LOG ROUNDS [die-holding]`. It waits for a line on stdin
 * (so that every contender starts at once), then ROUNDS times takes the lock, marks the critical
 * section with an exclusively created MARKER file (a second holder cannot create it and logs a
 * VIOLATION), and lets go. With `die-holding` it exits in its last round while holding the lock,
 * as `kill -9` would leave it.
 */
import {appendFileSync, closeSync, openSync, rmSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

import {acquireLockFile} from '../../src/local/lock-file.js'

const [lock, marker, log, roundsText, mode] = process.argv.slice(2)
if (lock === undefined || marker === undefined || log === undefined || roundsText === undefined) throw new Error('usage: lock-contender LOCK MARKER LOG ROUNDS [die-holding]')
const rounds = Number(roundsText)

process.stdout.write('ready\n')
process.stdin.once('data', () => void race())

async function race(): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const release = await acquireLockFile(lock!, {waitMs: 60_000, operation: 'race', subject: 'race', signal: AbortSignal.timeout(120_000)})
    try {
      closeSync(openSync(marker!, 'wx'))
    } catch {
      appendFileSync(log!, `VIOLATION ${process.pid}\n`)
    }
    appendFileSync(log!, `enter ${process.pid}\n`)
    await sleep(2)
    rmSync(marker!, {force: true})
    if (mode === 'die-holding' && round === rounds - 1) process.exit(0)
    await release()
  }
  process.exit(0)
}
