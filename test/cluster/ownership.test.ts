/**
 * Item 5 of issue #10: ownership and concurrency against the real API server's field manager.
 * Objects another manager created (`kubectl apply --server-side --field-manager=platform-team`)
 * are refused with exit 5 when they carry canary's names but not its labels, and adopted when they
 * are the stable objects or carry canary's labels, as docs/kubernetes.md says; two `canary step`
 * racing on one release: one wins, the other exits 5, and the state, the router object and
 * `canary status --json` agree afterwards, round after round.
 */
import {afterEach, describe, expect, it} from 'vitest'

import type {CliResult} from '../helpers/lifecycle.js'
import {aClusterRelease, kubectl, kubectlGet, releaseSpec, type ClusterRelease} from './fixture.js'

const OTHER_MANAGER = 'platform-team'
/** The field manager of the harness's stand-in controller's status writes (its HTTP client's user agent). */
const STAND_IN = 'undici'

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 60 s`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

let release: ClusterRelease | undefined

afterEach(async () => {
  await release?.dispose()
  release = undefined
})

/** Server-side apply of `yaml` by another field manager, as an administrator would with kubectl. */
function applyAsOtherManager(yaml: string): void {
  kubectl(['apply', '--server-side', `--field-manager=${OTHER_MANAGER}`, '-f', '-'], yaml)
}

/** An object as kubectl prints it (the fixture's type). */
type LiveObject = ReturnType<typeof kubectlGet>

/** `kubectl get -o json` with the field managers the API server recorded (kubectl hides them by default). */
function getWithManagers(namespace: string, resource: string, name: string): LiveObject {
  const text = kubectl(['-n', namespace, 'get', resource, name, '-o', 'json', '--show-managed-fields', '--ignore-not-found'])
  return text.trim() === '' ? undefined : (JSON.parse(text) as NonNullable<LiveObject>)
}

/** The field managers of an object read with getWithManagers. */
function managers(object: LiveObject): string[] {
  const entries = object?.metadata.managedFields as {manager: string}[] | undefined
  if (entries === undefined) throw new Error('no managedFields: read the object with getWithManagers')
  return entries.map((m) => m.manager).sort()
}

function errorOf(result: CliResult): {code: string; message: string} {
  return (result.json as {error: {code: string; message: string}}).error
}

/** Objects with canary's names for release `web` of router `traefik`, as another team would write them (no canary labels). */
const foreignObjects: Record<string, (namespace: string) => {yaml: string; resource: string; name: string; subject: string}> = {
  'TraefikService web': (ns) => ({resource: 'traefikservices.traefik.io', name: 'web', subject: `TraefikService ${ns}/web`, yaml: `apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: web, namespace: ${ns}}
spec: {weighted: {services: [{name: web, port: 8080, weight: 1}]}}`}),
  'IngressRoute web': (ns) => ({resource: 'ingressroutes.traefik.io', name: 'web', subject: `IngressRoute ${ns}/web`, yaml: `apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: ${ns}}
spec: {routes: [{kind: Rule, match: Host(\`other.example.com\`), services: [{name: web, port: 8080}]}]}`}),
  'Deployment web-canary': (ns) => ({resource: 'deployments.apps', name: 'web-canary', subject: `Deployment ${ns}/web-canary`, yaml: `apiVersion: apps/v1
kind: Deployment
metadata: {name: web-canary, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: theirs}}
  template:
    metadata: {labels: {app: theirs}}
    spec: {containers: [{name: app, image: ghcr.io/other/app:1}]}`}),
  'Service web-canary': (ns) => ({resource: 'services', name: 'web-canary', subject: `Service ${ns}/web-canary`, yaml: `apiVersion: v1
kind: Service
metadata: {name: web-canary, namespace: ${ns}}
spec: {selector: {app: theirs}, ports: [{port: 80}]}`}),
}

describe('objects another field manager created', () => {
  it.each(Object.keys(foreignObjects))('%s without canary\'s labels: start exits 5 naming it, leaves it untouched, and a retry after it is removed succeeds', async (key) => {
    release = await aClusterRelease('traefik')
    const foreign = foreignObjects[key]!(release.namespace)
    applyAsOtherManager(foreign.yaml)
    // The harness's stand-in controller (user agent undici) marks every Deployment available through /status: wait for it first.
    if (foreign.resource === 'deployments.apps') await until('the stand-in marks it available', () => managers(getWithManagers(release!.namespace, foreign.resource, foreign.name)).includes(STAND_IN))
    const before = kubectlGet(release.namespace, foreign.resource, foreign.name)

    const start = await release.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, start.stdout + start.stderr).toBe(5)
    expect(errorOf(start).code).toBe('E_CONFLICT')
    expect(errorOf(start).message).toMatch(new RegExp(`^${foreign.subject}: refusing to \\w+ it: it exists and is not managed by canary`))
    const after = getWithManagers(release.namespace, foreign.resource, foreign.name)
    expect(after?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion)
    expect(managers(after).filter((m) => m !== STAND_IN)).toEqual([OTHER_MANAGER])

    kubectl(['-n', release.namespace, 'delete', foreign.resource, foreign.name])
    const retry = await release.canary(['start', '--image', 'v2', '--json'])
    expect(retry.code, retry.stdout + retry.stderr).toBe(0)
    expect(retry.json).toMatchObject({phase: 'Progressing', canaryWeight: 10})
  })

  it('a routing object another manager created WITH canary\'s labels is adopted: canary\'s forced apply takes the weights over', async () => {
    release = await aClusterRelease('traefik')
    const ns = release.namespace
    applyAsOtherManager(`apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: web, namespace: ${ns}, labels: {app.kubernetes.io/managed-by: canary, canary.dev/release: web}}
spec: {weighted: {services: [{name: web, port: 8080, weight: 7}]}}`)
    const start = await release.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, start.stdout + start.stderr).toBe(0)
    const live = getWithManagers(ns, 'traefikservices.traefik.io', 'web')
    expect(live?.spec.weighted.services).toEqual([{name: 'web', port: 8080, weight: 90}, {name: 'web-canary', port: 8080, weight: 10}])
    expect(managers(live)).toContain('canary')
    const status = await release.canary(['status', '--json'])
    expect(status.json).toMatchObject({canaryWeight: 10, plannedWeight: 10})
  })

  it('the stable Deployment and Service another manager created are adopted as is; promote changes only the image, which canary then owns', async () => {
    release = await aClusterRelease('traefik')
    const ns = release.namespace
    applyAsOtherManager(stableManifest(ns, 'ghcr.io/acme/web:v1'))
    const deploymentBefore = kubectlGet(ns, 'deployments.apps', 'web')

    const start = await release.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, start.stdout + start.stderr).toBe(0)
    const deploymentAtStart = getWithManagers(ns, 'deployments.apps', 'web')
    expect(deploymentAtStart?.spec).toEqual(deploymentBefore?.spec)
    expect(managers(deploymentAtStart).filter((m) => m !== STAND_IN)).toEqual([OTHER_MANAGER])
    expect(kubectlGet(ns, 'services', 'web')?.metadata.labels).toEqual({app: 'web', team: 'platform'})

    const promote = await release.canary(['promote', '--force', '--json'])
    expect(promote.code, promote.stdout + promote.stderr).toBe(0)
    const promoted = getWithManagers(ns, 'deployments.apps', 'web')
    expect(promoted?.spec.template.spec.containers).toEqual([expect.objectContaining({name: 'server', image: 'ghcr.io/acme/web:v2'})])
    expect(promoted?.metadata.labels).toEqual({app: 'web', team: 'platform'})
    const canaryFields = (promoted?.metadata.managedFields as {manager: string; fieldsV1: unknown}[]).find((m) => m.manager === 'canary')
    expect(JSON.stringify(canaryFields?.fieldsV1)).toContain('"f:image"')

    // The real field manager now records canary as the image's owner: re-applying the old manifest conflicts.
    const reapply = spawnKubectlApply(stableManifest(ns, 'ghcr.io/acme/web:v1'))
    expect(reapply.status).not.toBe(0)
    expect(reapply.stderr).toMatch(/conflict with "canary"/)
    expect(reapply.stderr).toContain('.spec.template.spec.containers[name="server"].image')
    // Applying the promoted image is no conflict: the manifest agrees with what canary set.
    applyAsOtherManager(stableManifest(ns, 'ghcr.io/acme/web:v2'))
  })
})

function stableManifest(ns: string, image: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${ns}, labels: {app: web, team: platform}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: server, image: '${image}', ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${ns}, labels: {app: web, team: platform}}
spec: {selector: {app: web}, ports: [{port: 8080, targetPort: 8080}]}`
}

function spawnKubectlApply(yaml: string): {status: number | null; stderr: string} {
  try {
    applyAsOtherManager(yaml)
    return {status: 0, stderr: ''}
  } catch (error) {
    return {status: 1, stderr: (error as Error).message}
  }
}

/** Ten steps, so several rounds of racing steps fit in one rollout. */
const manySteps = (namespace: string) => releaseSpec(namespace, 'traefik').replace('steps: [10, 50, 100]', 'steps: [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]')
const STEPS = [5, 10, 20, 30, 40, 50, 60, 70, 80, 90]

describe('two canary step racing on one release', () => {
  it('one succeeds, the other exits 5 (E_CONFLICT); the state is intact and status reports what the router object says after every round', async () => {
    release = await aClusterRelease('traefik', {specText: manySteps})
    const r = release
    const start = await r.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, start.stdout + start.stderr).toBe(0)
    let stepIndex = 0
    let conflicts = 0
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.all([r.canary(['step', '--force', '--json']), r.canary(['step', '--force', '--json'])])
      const codes = results.map((x) => x.code).sort()
      for (const x of results.filter((y) => y.code !== 0)) {
        expect(x.code, x.stdout + x.stderr).toBe(5)
        expect(errorOf(x).code).toBe('E_CONFLICT')
        expect(errorOf(x).message).toContain('another canary run changed the rollout state first')
      }
      // Both may succeed when the second started after the first had saved: then they did not race.
      const successes = codes.filter((c) => c === 0).length
      expect(successes).toBeGreaterThanOrEqual(1)
      conflicts += 2 - successes

      const state = JSON.parse(kubectlGet(r.namespace, 'configmaps', 'web-canary-state')?.data['state.json'] as string) as {stepIndex: number; phase: string}
      expect(state.phase).toBe('Progressing')
      // Each success advanced at most one step (a success can also be only a weight correction: see below).
      expect(state.stepIndex - stepIndex).toBeGreaterThanOrEqual(0)
      expect(state.stepIndex - stepIndex).toBeLessThanOrEqual(successes)
      const previous = STEPS[stepIndex]!
      stepIndex = state.stepIndex
      const expected = STEPS[stepIndex]!
      console.log(`round ${round}: exit codes ${codes.join(', ')}; the state says ${expected} %`)
      const status = await r.canary(['status', '--json'])
      expect(status.json).toMatchObject({phase: 'Progressing', plannedWeight: expected, step: {index: stepIndex + 1}})
      const services = kubectlGet(r.namespace, 'traefikservices.traefik.io', 'web')?.spec.weighted.services as {name: string; weight: number}[]
      const routed = services.find((x) => x.name === 'web-canary')!.weight
      expect(services.find((x) => x.name === 'web')!.weight).toBe(100 - routed)
      expect((status.json as {canaryWeight: number}).canaryWeight).toBe(routed)
      // The loser may have set weights before its save failed; it then routes as the winner's saved
      // state says (src/rollout/engine.ts undo), so the router is never left a step behind.
      if (routed !== expected) console.log(`round ${round}: the router is at ${routed} % (previous step ${previous} %), the state says ${expected} %`)
      expect(routed).toBe(expected)
    }
    // Five rounds of two processes started together: at least one must truly have raced.
    expect(conflicts).toBeGreaterThanOrEqual(1)
  })
})
