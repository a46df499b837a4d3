/**
 * What each command asks of the real API server, counted from its audit log (issue 10: zero writes
 * when nothing changes): a step to the weight in force and a status write nothing; a step writes
 * the routing object and the state once; `run` writes at its looks, not at every tick.
 */
import {readFileSync, statSync} from 'node:fs'

import {afterEach, describe, expect, it} from 'vitest'

import {connectKube} from '../../src/kube/client.js'
import {aClusterRelease, cluster, releaseSpec, type ClusterRelease} from './fixture.js'

interface AuditEvent {
  stage: string
  verb: string
  user: {username: string}
  objectRef?: {resource?: string; name?: string}
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection'])

let release: ClusterRelease | undefined

afterEach(async () => {
  await release?.dispose()
  release = undefined
})

let markers = 0

/** The requests of the release's CI identity while `action` ran, as `verb resource/name`. */
async function audited(r: ClusterRelease, action: () => Promise<unknown>): Promise<{requests: string[]; writes: string[]}> {
  const user = `system:serviceaccount:${r.namespace}:canary`
  const offset = statSync(cluster.auditLog).size
  await action()
  // A marker request by the same identity: once the log shows it, every earlier request is there.
  const marker = `audit-marker-${++markers}`
  const client = await connectKube({kubeconfig: r.ciKubeconfig})
  await client.read({apiVersion: 'v1', kind: 'ConfigMap', namespace: r.namespace, name: marker}, AbortSignal.timeout(10_000)).catch(() => undefined)
  const deadline = Date.now() + 30_000
  for (;;) {
    const events = readFileSync(cluster.auditLog).subarray(offset).toString('utf8').split('\n').filter((line) => line.endsWith('}'))
      .map((line) => JSON.parse(line) as AuditEvent)
      .filter((e) => e.stage === 'ResponseComplete' && e.user.username === user)
    const end = events.findIndex((e) => e.objectRef?.name === marker)
    if (end >= 0) {
      const requests = events.slice(0, end).map((e) => `${e.verb} ${e.objectRef?.resource ?? '?'}/${e.objectRef?.name ?? ''}`)
      return {requests, writes: requests.filter((request) => WRITE_VERBS.has(request.split(' ')[0] ?? ''))}
    }
    if (Date.now() > deadline) throw new Error(`the audit log ${cluster.auditLog} did not show ${marker} within 30 s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Requests for the same object more than once. */
function repeated(requests: readonly string[]): string[] {
  const seen = new Map<string, number>()
  for (const request of requests) seen.set(request, (seen.get(request) ?? 0) + 1)
  return [...seen].filter(([request, count]) => count > (request === 'get configmaps/web-canary-state' ? 2 : 1)).map(([request, count]) => `${request} ×${count}`)
}

describe.each(['traefik', 'nginx', 'gateway-api'])('router %s: API requests per command, from the audit log', (router) => {
  it('no write for a step to the weight in force or a status; a step writes the routing object and the state once', async () => {
    const r = (release = await aClusterRelease(router))
    const started = await r.canary(['start', '--image', 'v2', '--json'])
    expect(started.code, `${started.stdout}${started.stderr}`).toBe(0)
    expect(started.json).toMatchObject({canaryWeight: 10})

    const noOp = await audited(r, async () => expect((await r.canary(['step', '--weight', '10', '--json'])).code).toBe(0))
    expect(noOp.writes).toEqual([])
    expect(repeated(noOp.requests)).toEqual([])

    const status = await audited(r, async () => expect((await r.canary(['status', '--json'])).code).toBe(0))
    expect(status.writes).toEqual([])
    expect(repeated(status.requests)).toEqual([])

    const step = await audited(r, async () => expect((await r.canary(['step', '--weight', '20', '--force', '--json'])).code).toBe(0))
    expect(step.writes.filter((w) => w.endsWith('configmaps/web-canary-state'))).toEqual(['update configmaps/web-canary-state'])
    expect(step.writes.length).toBeGreaterThanOrEqual(2)
    expect(repeated(step.requests)).toEqual([])
    // No discovery: every request names a resource.
    expect(step.requests.filter((request) => request.startsWith('get ?'))).toEqual([])
  })
})

describe('run against the real API server', () => {
  it('writes the state at its looks (every 5 s), not at every tick', async () => {
    // The suite's releases look every second; this one looks every 5 s, so a look and a tick differ.
    const r = (release = await aClusterRelease('traefik', {specText: (namespace) => releaseSpec(namespace, 'traefik').replace('interval: 1s', 'interval: 5s')}))
    const started = await r.canary(['start', '--image', 'v2', '--json'])
    expect(started.code, `${started.stdout}${started.stderr}`).toBe(0)
    let ranMs = 0
    const run = await audited(r, async () => {
      const t0 = Date.now()
      // No traffic: every look is inconclusive and the run ends at its deadline (exit 13).
      const result = await r.canary(['run', '--image', 'v2', '--timeout', '20s', '--json'])
      ranMs = Date.now() - t0
      expect(result.code, `${result.stdout}${result.stderr}`).toBe(13)
    })
    const stateWrites = run.writes.filter((w) => w.endsWith('configmaps/web-canary-state')).length
    // One tick a second used to write once a second; now a write needs a look (interval 5 s).
    expect(stateWrites).toBeGreaterThanOrEqual(2)
    expect(stateWrites).toBeLessThanOrEqual(Math.ceil(ranMs / 5000) + 1)
    expect(run.writes.filter((w) => !w.endsWith('configmaps/web-canary-state'))).toEqual([])
  })
})
