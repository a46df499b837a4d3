/**
 * Item 6 of issue #10: the API server stopped mid-rollout (etcd keeps running, so nothing stored
 * is lost). Commands exit 6 (E_UNREACHABLE) at once instead of hanging, and write nothing; a
 * `canary run` in progress stops with exit 6 too. Real Traefik keeps serving the last split it
 * read. Once the API server is back, `status` and `run` resume from the stored state, and the
 * weights are read back from the router object: a weight changed behind canary's back shows in
 * `status` and is set again (decision `weightCorrected`, docs/kubernetes.md) before the rollout goes on.
 *
 * Durations are printed, not asserted: the only bound is far above any timeout canary has.
 */
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {restartApiServer, stopApiServer} from '../../scripts/cluster/cluster.js'
import type {CliResult} from '../helpers/lifecycle.js'
import {aClusterRelease, cluster, kubectl, kubectlGet, sample, serve, steadyTraffic, type ClusterRelease} from './fixture.js'

/** Far above any wait canary has: a command that hangs on a dead API server fails this. */
const UNREACHABLE_BOUND_MS = 60_000

/** A release with v1 and v2 served and `canary start` run, as each test begins. */
interface Started {
  readonly r: ClusterRelease
  readonly start: CliResult
}

async function startedRelease(): Promise<Started> {
  const r = await aClusterRelease('traefik')
  releases.push(r)
  await serve(r, 'web', 'v1')
  await serve(r, 'web-canary', 'v2')
  return {r, start: await r.canary(['start', '--image', 'v2', '--json'])}
}

const releases: ClusterRelease[] = []
let first: Started
let second: Started

// Both releases are started while the API server is up, before either test stops it: after a
// restart Traefik's Kubernetes watches may take a while to see new objects (seen: ~25 s of "no
// servers found"), and the second test's run must judge real traffic from its start.
beforeAll(async () => {
  ;[first, second] = await Promise.all([startedRelease(), startedRelease()])
})

afterEach(async () => {
  // A failed test must not leave the next file without an API server.
  await restartApiServer()
})

afterAll(async () => {
  await restartApiServer()
  await Promise.all(releases.map((r) => r.dispose()))
})

async function timed(r: ClusterRelease, args: readonly string[]): Promise<{result: CliResult; ms: number}> {
  const started = performance.now()
  const result = await r.canary([...args, '--json'])
  return {result, ms: performance.now() - started}
}

function stateOf(r: ClusterRelease): {phase: string; stepIndex: number; decisions: {event: string; message: string}[]} {
  return JSON.parse(kubectlGet(r.namespace, 'configmaps', 'web-canary-state')?.data['state.json'] as string) as ReturnType<typeof stateOf>
}

function canaryWeightInRouter(r: ClusterRelease): number {
  const services = kubectlGet(r.namespace, 'traefikservices.traefik.io', 'web')?.spec.weighted.services as {name: string; weight: number}[]
  return services.find((s) => s.name === 'web-canary')?.weight ?? 0
}

/** Waits until 100 requests through Traefik are all answered by v1 or v2 with `canaryPercent` (within 2) at v2. */
async function untilServed(r: ClusterRelease, canaryPercent: number): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const {versions} = await sample(cluster.traefikUrl, {host: r.host}, 100)
    if ((versions.v1 ?? 0) + (versions.v2 ?? 0) === 100 && Math.abs((versions.v2 ?? 0) - canaryPercent) <= 2) return
    if (Date.now() > deadline) throw new Error(`Traefik did not serve ${canaryPercent} % canary within 120 s: ${JSON.stringify(versions)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

describe('the API server stopped mid-rollout (router traefik, etcd kept)', () => {
  it('every command exits 6 quickly and writes nothing; Traefik keeps the split; after the restart status reads the router back and run corrects a weight changed meanwhile, then promotes', async () => {
    const {r, start} = first
    expect(start.code, start.stdout + start.stderr).toBe(0)
    const stored = kubectlGet(r.namespace, 'configmaps', 'web-canary-state')?.metadata.resourceVersion as string

    await stopApiServer()
    try {
      // All at once: each is a separate CLI process, and each must fail on its own, quickly.
      const commands = [['status'], ['step', '--force'], ['promote', '--force'], ['abort'], ['run', '--image', 'v2'], ['start', '--image', 'v3']]
      const outcomes = await Promise.all(commands.map(async (args) => ({args, ...(await timed(r, args))})))
      for (const {args, result, ms} of outcomes) {
        console.log(`API server down: canary ${args.join(' ')} → exit ${result.code} in ${Math.round(ms)} ms`)
        expect(result.code, result.stdout + result.stderr).toBe(6)
        const error = (result.json as {error: {code: string; message: string}}).error
        expect(error.code).toBe('E_UNREACHABLE')
        expect(error.message).toContain(`the Kubernetes API server at ${cluster.apiServer} is unreachable`)
        expect(ms).toBeLessThan(UNREACHABLE_BOUND_MS)
      }
      // The data plane does not need the API server: Traefik serves the split it last read.
      const {versions} = await sample(cluster.traefikUrl, {host: r.host}, 200)
      expect(versions).toEqual({v1: 180, v2: 20})
    } finally {
      await restartApiServer()
    }
    // Nothing was written while the server was down: the stored state is the one start saved.
    expect(kubectlGet(r.namespace, 'configmaps', 'web-canary-state')?.metadata.resourceVersion).toBe(stored)

    // Behind canary's back: someone sets the canary to 33 % with kubectl.
    kubectl(['-n', r.namespace, 'patch', 'traefikservices.traefik.io', 'web', '--type=json', '-p', JSON.stringify([{op: 'replace', path: '/spec/weighted/services/0/weight', value: 67}, {op: 'replace', path: '/spec/weighted/services/1/weight', value: 33}])])
    const status = await r.canary(['status', '--json'])
    expect(status.code, status.stdout + status.stderr).toBe(0)
    expect(status.json).toMatchObject({phase: 'Progressing', canaryWeight: 33, plannedWeight: 10, step: {index: 1}})

    // run resumes the stored rollout: the weight is set back to the plan's first, then the plan goes on.
    const traffic = steadyTraffic(cluster.traefikUrl, {host: r.host})
    const run = await r.canary(['run', '--image', 'v2', '--timeout', '3m', '--json'])
    await traffic.stop()
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.json).toMatchObject({exitCode: 0, status: {phase: 'Promoted'}})
    const kinds = stateOf(r).decisions.map((d) => d.event)
    expect(kinds).toContain('weightCorrected')
    expect(kinds.indexOf('weightCorrected')).toBeLessThan(kinds.lastIndexOf('stepAdvanced'))
  })

  it('a canary run in progress exits 6 when the API server goes away; after the restart a second run resumes the same rollout to promotion', async () => {
    const {r, start} = second
    expect(start.code, start.stdout + start.stderr).toBe(0)
    // Started before the previous test's restart (beforeAll); Traefik serves it, the run below judges real traffic.
    const converged = performance.now()
    await untilServed(r, 10)
    console.log(`Traefik served the release's 10 % split ${Math.round(performance.now() - converged)} ms after the test began`)
    const traffic = steadyTraffic(cluster.traefikUrl, {host: r.host})
    try {
      // run resumes the rollout start began, and is interrupted at its first step.
      const firstRun = r.canary(['run', '--image', 'v2', '--timeout', '3m', '--json'])
      await until('the run takes its first look at the metrics', () => stateOf(r).decisions.some((d) => d.event === 'analysis'), 60_000)
      const startedAt = stateOf(r)
      const stopping = performance.now()
      await stopApiServer()
      const interrupted = await firstRun
      console.log(`canary run exited ${interrupted.code} ${Math.round(performance.now() - stopping)} ms after kube-apiserver was sent SIGTERM`)
      expect(interrupted.code, interrupted.stdout + interrupted.stderr).toBe(6)
      expect((interrupted.json as {error: {code: string}}).error.code).toBe('E_UNREACHABLE')
      await restartApiServer()

      const resumedFrom = stateOf(r)
      expect(resumedFrom.phase).toBe('Progressing')
      expect(resumedFrom.stepIndex).toBeGreaterThanOrEqual(startedAt.stepIndex)
      const status = await r.canary(['status', '--json'])
      expect(status.json).toMatchObject({phase: 'Progressing', canaryWeight: canaryWeightInRouter(r)})
      const second = await r.canary(['run', '--image', 'v2', '--timeout', '3m', '--json'])
      expect(second.code, second.stdout + second.stderr).toBe(0)
      expect(second.json).toMatchObject({exitCode: 0, status: {phase: 'Promoted'}})
      // The same rollout went on: its start is the one `start` began, not a new one.
      expect((second.json as {status: {startedAt: string}}).status.startedAt).toBe((start.json as {startedAt: string}).startedAt)
      expect(kubectlGet(r.namespace, 'deployments.apps', 'web')?.spec.template.spec.containers[0].image).toBe('ghcr.io/acme/web:v2')
    } finally {
      await traffic.stop()
    }
  })
})
