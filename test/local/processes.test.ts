// Liveness of processes and process groups: a zombie (exited, not yet reaped) is not running.
import {spawn} from 'node:child_process'
import {once} from 'node:events'

import {describe, expect, it} from 'vitest'

import {isProcessAlive, isProcessGroupAlive} from '../../src/local/processes.js'
import {eventually} from '../helpers/lifecycle.js'

/** A detached group: `sleep` (the leader, via exec) never reaps the child the shell forked, which exits a moment after the exec (had it exited before, the shell could have reaped it: a flake under load). */
async function groupWithZombie(): Promise<{leader: number; zombie: number; stop: () => Promise<void>}> {
  const child = spawn('/bin/sh', ['-c', '(sleep 0.3; exit 0) & echo $!; exec sleep 30'], {detached: true, stdio: ['ignore', 'pipe', 'ignore']})
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  const zombie = Number(line.toString().trim())
  return {
    leader: child.pid!,
    zombie,
    stop: async () => {
      const exited = once(child, 'exit')
      process.kill(-child.pid!, 'SIGKILL')
      await exited
    },
  }
}

describe('process liveness', () => {
  it('counts this process as alive and an unused pid as gone', () => {
    expect(isProcessAlive(process.pid)).toBe(true)
    expect(isProcessAlive(2 ** 22 + 12345)).toBe(false)
  })

  it.runIf(process.platform === 'linux')('treats a zombie as gone, while signal 0 still finds it', async () => {
    const group = await groupWithZombie()
    try {
      expect(await eventually(() => !isProcessAlive(group.zombie), 5000)).toBe(true)
      expect(() => process.kill(group.zombie, 0)).not.toThrow()
      expect(isProcessAlive(group.leader)).toBe(true)
      expect(isProcessGroupAlive(group.leader)).toBe(true)
    } finally {
      await group.stop()
    }
    // The leader is reaped by us; the zombie may linger until PID 1 reaps it, and does not count.
    expect(isProcessGroupAlive(group.leader)).toBe(false)
  })
})
