// Ctrl-C and SIGTERM through the built CLI on the local target: the command stops without waiting
// for the rollout, exits 130 (SIGINT) or 143 (SIGTERM), and leaves a state that parses, a free
// lock, weights as the state says, and a release the next command can drive. Signals are sent at
// points the test reaches by waiting on the command's own output; nothing sleeps.
import {existsSync} from 'node:fs'
import {readFile, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

import {isProcessAlive} from '../../src/local/processes.js'
import {aLocalRelease, canary, cleanUp, eventually, startCanary, type RunningCli} from '../helpers/lifecycle.js'

vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

/** Steps that keep a rollout in progress for an hour once it has reached 20 %. */
const LONG_PAUSE = '[{setWeight: 20}, {pause: {duration: 1h}}, {setWeight: 100}]'
const AT_20 = /step 1\/3: canary weight 20\/100/

let dir: string | undefined
let running: RunningCli | undefined
/** The spec of a demo whose clean-up a test interrupted: `canary down` stops what it left. */
let demoSpec: string | undefined

afterEach(async () => {
  if (running !== undefined && running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL')
  await running?.exited
  running = undefined
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
  if (demoSpec !== undefined && existsSync(demoSpec)) {
    await canary(['down', '-f', demoSpec], dirname(demoSpec))
    await rm(dirname(demoSpec), {recursive: true, force: true})
  }
  demoSpec = undefined
})

/** The saved rollout, read from the state file as written (it must parse). */
async function savedState(releaseDir: string, release = 'shop'): Promise<{phase: string; stepIndex: number; canaryImage: string}> {
  const file = JSON.parse(await readFile(join(releaseDir, `.canary/${release}/state.json`), 'utf8')) as {format: string; state: {phase: string; stepIndex: number; canaryImage: string}}
  expect(file.format).toBe('canary.rollout/v1')
  return file.state
}

function lockHeld(releaseDir: string, release = 'shop'): boolean {
  return existsSync(join(releaseDir, `.canary/${release}/operation.lock`))
}

/** `canary status --json` after the interrupt: it works, and the weight read back is the one the state plans. */
async function expectStatusAgrees(spec: string, cwd: string, phase: string): Promise<void> {
  const status = await canary(['status', '--json', '-f', spec], cwd)
  expect(status.code, status.stderr).toBe(0)
  expect(status.json).toMatchObject({phase})
  expect(status.json?.['canaryWeight']).toBe(status.json?.['plannedWeight'])
}

describe('interrupting canary run', () => {
  it.each([
    {signal: 'SIGINT', exitCode: 130},
    {signal: 'SIGTERM', exitCode: 143},
  ] as const)('$signal stops it with exit $exitCode; the saved rollout stays in progress, weights as saved', async ({signal, exitCode}) => {
    const release = await aLocalRelease({steps: LONG_PAUSE})
    dir = release.dir
    running = startCanary(['run', '--image', 'v2', '-f', release.spec], dir)
    await running.waitFor('stderr', AT_20)
    running.child.kill(signal)
    // The rollout would go on for an hour: ending at all is the command giving up its wait.
    const exit = await running.exited
    expect(exit, running.output.stderr).toEqual({code: exitCode, signal: null})
    expect(running.output.stderr).toContain(`${signal} received: stopping cleanly`)
    expect(running.output.stderr).toContain(`Error [E_INTERRUPTED]: interrupted by ${signal}`)
    expect(await savedState(dir)).toMatchObject({phase: 'Progressing', stepIndex: 0, canaryImage: 'acme/shop:v2'})
    expect(lockHeld(dir)).toBe(false)
    await expectStatusAgrees(release.spec, dir, 'Progressing')
    // Still the rollout in progress: another image is refused until it is resumed or aborted.
    const other = await canary(['run', '--image', 'v3', '-f', release.spec], dir)
    expect(other.code, other.stderr).toBe(5)
  })

  it('prints the interruption as the --json error object', async () => {
    const release = await aLocalRelease({steps: LONG_PAUSE})
    dir = release.dir
    running = startCanary(['run', '--image', 'v2', '--json', '-f', release.spec], dir)
    // With --json there is no progress output: wait for the saved state to reach the first step.
    expect(await eventually(async () => (await savedState(dir!).catch(() => undefined))?.phase === 'Progressing', 30_000)).toBe(true)
    running.child.kill('SIGTERM')
    const exit = await running.exited
    expect(exit.code, running.output.stderr).toBe(143)
    expect(JSON.parse(running.output.stdout)).toMatchObject({error: {code: 'E_INTERRUPTED', exitCode: 143, message: 'interrupted by SIGTERM'}})
    expect(lockHeld(dir)).toBe(false)
    await expectStatusAgrees(release.spec, dir, 'Progressing')
  })
})

describe('interrupting canary start', () => {
  it('Ctrl-C while the canary is not ready: exit 130, the rollout stays Starting, and abort ends it cleanly', async () => {
    const release = await aLocalRelease({env: {DEMO_NEVER_READY: '1', DEMO_BAD_IMAGE: 'acme/shop:v2'}, readyTimeout: '10m'})
    dir = release.dir
    running = startCanary(['start', '--image', 'v2', '-f', release.spec], dir)
    await running.waitFor('stderr', /deploying canary acme\/shop:v2/)
    running.child.kill('SIGINT')
    const exit = await running.exited
    expect(exit, running.output.stderr).toEqual({code: 130, signal: null})
    expect(await savedState(dir)).toMatchObject({phase: 'Starting', canaryImage: 'acme/shop:v2'})
    expect(lockHeld(dir)).toBe(false)
    const status = await canary(['status', '--json', '-f', release.spec], dir)
    expect(status.code, status.stderr).toBe(0)
    expect(status.json).toMatchObject({phase: 'Starting', canaryWeight: 0})
    const aborted = await canary(['abort', '--json', '-f', release.spec], dir)
    expect(aborted.code, aborted.stderr).toBe(0)
    expect(aborted.json).toMatchObject({phase: 'Aborted'})
  })
})

describe('interrupting canary status --wait', () => {
  it('Ctrl-C stops the wait with exit 130 and changes nothing', async () => {
    const release = await aLocalRelease({steps: LONG_PAUSE})
    dir = release.dir
    const started = await canary(['start', '--image', 'v2', '-f', release.spec], dir)
    expect(started.code, started.stderr).toBe(0)
    const before = await readFile(join(dir, '.canary/shop/state.json'), 'utf8')
    running = startCanary(['status', '--wait', '-f', release.spec], dir)
    await running.waitFor('stdout', /shop: Progressing, step 1\/3, canary 20\/100/)
    running.child.kill('SIGINT')
    const exit = await running.exited
    expect(exit, running.output.stderr).toEqual({code: 130, signal: null})
    expect(await readFile(join(dir, '.canary/shop/state.json'), 'utf8')).toBe(before)
    expect(lockHeld(dir)).toBe(false)
    await expectStatusAgrees(release.spec, dir, 'Progressing')
  })
})

describe('interrupting canary demo', () => {
  /** Runs the demo to its first step; returns its spec file and daemon pid (both under a temp dir the demo owns). */
  async function demoAtFirstStep(): Promise<{spec: string; daemonPid: number}> {
    running = startCanary(['demo'], process.cwd())
    const [, spec] = await running.waitFor('stderr', /demo: starting the proxy and v1 \(spec (\S+)\)/)
    demoSpec = spec
    await running.waitFor('stderr', AT_20)
    const daemon = JSON.parse(await readFile(join(dirname(spec!), '.canary/demo/daemon.json'), 'utf8')) as {pid: number}
    return {spec: spec!, daemonPid: daemon.pid}
  }

  it('Ctrl-C still cleans everything up: exit 130, daemon stopped, temp dir removed', async () => {
    const {spec, daemonPid} = await demoAtFirstStep()
    running!.child.kill('SIGINT')
    const exit = await running!.exited
    expect(exit, running!.output.stderr).toEqual({code: 130, signal: null})
    expect(isProcessAlive(daemonPid)).toBe(false)
    expect(existsSync(dirname(spec))).toBe(false)
  })

  it('a second Ctrl-C quits at once while the clean-up is stuck; the state left behind still works', async () => {
    const {spec, daemonPid} = await demoAtFirstStep()
    const demoDir = dirname(spec)
    // A frozen daemon holds the clean-up (stopping it waits on its control API), so the second
    // signal is certain to arrive while the first one is still being honoured.
    process.kill(daemonPid, 'SIGSTOP')
    try {
      running!.child.kill('SIGINT')
      await running!.waitFor('stderr', /SIGINT received: stopping cleanly/)
      running!.child.kill('SIGINT')
      const exit = await running!.exited
      // Killed by the signal itself, as without a handler: the shell reports 130 too.
      expect(exit, running!.output.stderr).toEqual({code: null, signal: 'SIGINT'})
      expect(running!.output.stderr).not.toContain('Error [E_INTERRUPTED]')
    } finally {
      process.kill(daemonPid, 'SIGCONT')
    }
    expect(await savedState(demoDir, 'demo')).toMatchObject({phase: 'Progressing', canaryImage: 'canary-demo/app:v2'})
    const status = await canary(['status', '--json', '-f', spec], demoDir)
    expect(status.code, status.stderr).toBe(0)
    expect(status.json).toMatchObject({phase: 'Progressing'})
    const down = await canary(['down', '-f', spec], demoDir)
    expect(down.code, down.stderr).toBe(0)
    // The daemon's parent died with the demo: a zombie-aware check, as not every init reaps at once.
    expect(isProcessAlive(daemonPid)).toBe(false)
  })
})
