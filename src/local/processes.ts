/**
 * Is a process (or a process group) still running? An exited process stays in the process table
 * as a zombie until its parent reaps it; for a detached daemon or the app a replica's shell
 * started, that parent is PID 1, which on some hosts (containers, this project's CI VMs) reaps
 * only every second or two. Signal 0 cannot tell a zombie from a live process, so on Linux the
 * state comes from /proc; elsewhere signal 0 is the best there is.
 */
import {readdirSync, readFileSync} from 'node:fs'

/** State letter and process group of `pid` from /proc, or undefined when /proc has no such entry. */
function procStat(pid: string): {state: string; pgrp: number} | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // "pid (comm) state ppid pgrp …"; comm may contain spaces and parentheses.
  const [state = '', , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {state, pgrp: Number(pgrp)}
}

let procReadable: boolean | undefined

/** Whether /proc describes processes here (Linux); checked on first use, not at import. */
function hasProc(): boolean {
  procReadable ??= procStat(String(process.pid)) !== undefined
  return procReadable
}

const live = (state: string) => state !== 'Z' && state !== 'X'

function signalZero(target: number): boolean {
  try {
    process.kill(target, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** True while `pid` runs (a zombie has exited). */
export function isProcessAlive(pid: number): boolean {
  if (!hasProc()) return signalZero(pid)
  const stat = procStat(String(pid))
  return stat !== undefined && live(stat.state)
}

/** True while a live process of process group `pgid` is left. */
export function isProcessGroupAlive(pgid: number): boolean {
  if (!hasProc()) return signalZero(-pgid)
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = procStat(entry)
    if (stat !== undefined && stat.pgrp === pgid && live(stat.state)) return true
  }
  return false
}
