import {afterEach, describe, expect, it, vi} from 'vitest'

import {spawn} from 'node:child_process'

import {CLI, aLocalRelease, canary, cleanUp, daemonInfo, eventually, traffic} from '../helpers/lifecycle.js'
import {join} from 'node:path'
import {readFile} from 'node:fs/promises'

// Each test spawns the CLI several times (about a second each on a busy machine) and waits for real intervals.
vi.setConfig({testTimeout: 120_000, hookTimeout: 60_000})

let dir: string | undefined

afterEach(async () => {
  if (dir !== undefined) await cleanUp(dir)
  dir = undefined
})

/** Starts `canary run` and traffic as soon as the proxy is up; resolves the run's result and the traffic seen. */
async function runWithTraffic(args: string[], cwd: string) {
  const running = canary(args, cwd)
  let load: ReturnType<typeof traffic> | undefined
  await eventually(async () => (await daemonInfo(cwd)) !== undefined, 20_000)
  const info = await daemonInfo(cwd)
  if (info !== undefined) load = traffic(info.proxyUrl, 100)
  const result = await running
  const counts = await load?.stop()
  return {result, counts}
}

describe('canary run on the local target (built CLI)', () => {
  // Passing needs evidence, not only the absence of errors: a freshly started canary on a machine
  // busy with the rest of the suite can take a while to show it is as fast as stable (~25 s quiet;
  // one loaded CI run ended Inconclusive at 60 s), so this run gets more room.
  it('promotes a healthy canary (exit 0)', {timeout: 180_000}, async () => {
    const release = await aLocalRelease()
    dir = release.dir
    const {result} = await runWithTraffic(['run', '--image', 'v2', '--timeout', '150s', '--json', '-f', release.spec], dir)
    expect(result.code, `${result.stderr}\n${JSON.stringify(result.json, null, 1)?.slice(-6000)}`).toBe(0)
    expect(result.json).toMatchObject({outcome: 'promoted', exitCode: 0, status: {phase: 'Promoted', stable: {image: 'acme/shop:v2'}}})
  })

  it('rolls back a canary that errs (exit 10) and the decision log says why, with numbers', async () => {
    const release = await aLocalRelease({env: {DEMO_BAD_IMAGE: 'acme/shop:v2', DEMO_ERROR_PERCENT: '20'}})
    dir = release.dir
    const {result} = await runWithTraffic(['run', '--image', 'v2', '--timeout', '60s', '--json', '-f', release.spec], dir)
    expect(result.code, result.stderr).toBe(10)
    const status = (result.json as {status: {phase: string; canaryWeight: number; decisions: Array<{event: string; analysis?: {verdict: string; measurements: unknown[]}}>}}).status
    expect(status.phase).toBe('RolledBack')
    expect(status.canaryWeight).toBe(0)
    const failedLook = status.decisions.find((d) => d.event === 'analysis' && d.analysis?.verdict === 'Failed')
    expect(failedLook?.analysis?.measurements.length).toBeGreaterThan(2)
  })

  it('rolls back when the canary process crashes mid-rollout: its share goes to stable, analysis fails', async () => {
    const release = await aLocalRelease({env: {DEMO_BAD_IMAGE: 'acme/shop:v2', DEMO_CRASH_AFTER: '30'}})
    dir = release.dir
    const {result, counts} = await runWithTraffic(['run', '--image', 'v2', '--timeout', '60s', '--json', '-f', release.spec], dir)
    expect(result.code, result.stderr).toBe(10)
    expect((result.json as {status: {phase: string}}).status.phase).toBe('RolledBack')
    expect(counts?.ok).toBeGreaterThan(0)
    const log = await readFile(join(dir, '.canary/shop/state.json'), 'utf8')
    expect(log).toMatch(/rolling back/)
  })

  it('stops at an indefinite pause with exit 12, and run resumes the same rollout', async () => {
    const release = await aLocalRelease({steps: '[{setWeight: 20}, {pause: {}}, {setWeight: 100}]'})
    dir = release.dir
    const {result} = await runWithTraffic(['run', '--image', 'v2', '--timeout', '60s', '--json', '-f', release.spec], dir)
    expect(result.code, result.stderr).toBe(12)
    expect(result.json).toMatchObject({outcome: 'paused', status: {phase: 'Paused'}})
    const other = await canary(['run', '--image', 'v3', '-f', release.spec], dir)
    expect(other.code).toBe(5)
  })

  it('resumes after kill -9 from the persisted state: weights read back, same rollout, promoted', async () => {
    const release = await aLocalRelease({steps: '[{setWeight: 20}, {pause: {duration: 2s}}, {setWeight: 100}]'})
    dir = release.dir
    const child = spawn(process.execPath, [CLI, 'run', '--image', 'v2', '-f', release.spec], {cwd: dir, stdio: 'ignore'})
    await eventually(async () => (await daemonInfo(dir!)) !== undefined, 20_000)
    const load = traffic((await daemonInfo(dir))!.proxyUrl, 100)
    try {
      const stateFile = join(dir, '.canary/shop/state.json')
      expect(await eventually(async () => /"phase": "Progressing"/.test(await readFile(stateFile, 'utf8').catch(() => '')), 20_000)).toBe(true)
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
      const resumed = await canary(['run', '--image', 'v2', '--timeout', '60s', '--json', '-f', release.spec], dir)
      expect(resumed.code, resumed.stderr).toBe(0)
      const status = (resumed.json as {status: {phase: string; decisions: Array<{event: string}>}}).status
      expect(status.phase).toBe('Promoted')
      expect(status.decisions.filter((d) => d.event === 'started')).toHaveLength(1)
    } finally {
      await load.stop()
    }
  })

  it('the demo promotes a good v2 (exit 0) and rolls back a bad one (exit 10)', async () => {
    const good = await canary(['demo', '--json'], process.cwd())
    expect(good.code, good.stderr).toBe(0)
    expect(good.json).toMatchObject({outcome: 'promoted'})
    const bad = await canary(['demo', '--bad', '--json'], process.cwd())
    expect(bad.code, bad.stderr).toBe(10)
    expect(bad.json).toMatchObject({outcome: 'rolledBack', status: {phase: 'RolledBack'}})
  })
})
