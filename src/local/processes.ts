/**
 * Is a process (or a process group) still running? An exited process stays in the process table
 * as a zombie until its parent reaps it; for a detached daemon or the app a replica's shell
 * started, that parent is PID 1, which on some hosts (containers, this project's CI VMs) reaps
 * only every second or two. Signal 0 cannot tell a zombie from a live process, so on Linux the
 * state comes from /proc; elsewhere signal 0 is the best there is.
 */
import {readdirSync, readFileSync} from 'node:fs'

/** State letter, process group and start time of `pid` from /proc, or undefined when /proc has no such entry. */
function procStat(pid: string): {state: string; pgrp: number; startTicks: string} | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // "pid (comm) state ppid pgrp …"; comm may contain spaces and parentheses. Field 22 of the
  // line (index 19 after comm) is the start time in clock ticks since boot (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {state: fields[0] ?? '', pgrp: Number(fields[2]), startTicks: fields[19] ?? ''}
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

let bootId: string | undefined

/**
 * Who `pid` is, beyond its number: boot id and start time (Linux). A pid is reused once its
 * process is gone, so a record that names a process by pid alone can point at a stranger; with
 * its identity it cannot. Undefined where /proc is not available (the pid alone is then used).
 */
export function processIdentity(pid: number): string | undefined {
  if (!hasProc()) return undefined
  const stat = procStat(String(pid))
  if (stat === undefined || stat.startTicks === '') return undefined
  bootId ??= readBootId()
  return `${bootId}/${stat.startTicks}`
}

/** This boot's id; start times restart at every boot. Some sandboxes hide it: start time alone then. */
function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return 'boot'
  }
}

/** True while the process a record names runs: same pid, same identity when one was recorded, not a zombie. */
export function isRecordedProcessAlive(pid: number, identity: string | undefined): boolean {
  if (!isProcessAlive(pid)) return false
  if (identity === undefined) return true
  const current = processIdentity(pid)
  return current === undefined || current === identity
}
