/**
 * Item 4 of issue #10: `canary render --rbac` against the real API server's RBAC authorizer.
 * With exactly the rendered Role (a token the server issued for the rendered ServiceAccount, used
 * through a kubeconfig as CI does) the whole lifecycle passes; with any single verb removed from
 * the Role, the first command that needs it stops with E_FORBIDDEN, exit 3, naming that verb and
 * that resource, and every command before it succeeded. So the rendered Role is both sufficient
 * and minimal, proven by the server users run rather than by our fake.
 */
import {describe, expect, it} from 'vitest'
import {parseAllDocuments} from 'yaml'

import {renderRbac} from '../../scripts/cluster/cluster.js'
import type {CliResult} from '../helpers/lifecycle.js'
import {aClusterRelease, kubectl, kubectlAsync, releaseSpec, type ClusterRelease} from './fixture.js'

interface Rule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
  resourceNames?: string[]
}

/** The rules of the rendered Role `canary-web` for `router`. */
function renderedRules(router: string): Rule[] {
  const role = parseAllDocuments(renderRbac(releaseSpec('rbac-probe', router)))
    .map((d) => d.toJS() as {kind: string; metadata: {name: string}; rules?: Rule[]})
    .find((o) => o.kind === 'Role' && o.metadata.name === 'canary-web')
  if (role?.rules === undefined) throw new Error(`canary render --rbac printed no Role canary-web for router ${router}`)
  return role.rules
}

/** The whole lifecycle a CI pipeline drives: a rollout promoted, a second one aborted, then down. */
const LIFECYCLE: readonly (readonly string[])[] = [
  ['start', '--image', 'v2'],
  ['status'],
  ['step', '--force'],
  ['promote', '--force'],
  ['start', '--image', 'v3'],
  ['status'],
  ['abort'],
  ['down'],
]

/** Runs the lifecycle until a command fails; returns every command's outcome up to that one. */
async function runLifecycle(release: ClusterRelease): Promise<{args: readonly string[]; result: CliResult}[]> {
  const outcomes: {args: readonly string[]; result: CliResult}[] = []
  for (const args of LIFECYCLE) {
    const result = await release.canary([...args, '--json'])
    outcomes.push({args, result})
    if (result.code !== 0) break
  }
  return outcomes
}

/** `kubectl auth can-i` as the CI identity: RBAC is served from an informer cache, so a Role edit shows up shortly after it is stored. */
async function waitUntilCanI(release: ClusterRelease, verb: string, resource: string, expected: 'yes' | 'no'): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    // can-i prints no and exits 1 when the answer is no.
    const answer = await kubectlAsync(['-n', release.namespace, 'auth', 'can-i', verb, resource], undefined, release.ciKubeconfig).catch((error: Error & {stdout?: string}) => error.stdout || error.message)
    if (answer.trim() === expected) return
    if (Date.now() > deadline) throw new Error(`kubectl auth can-i ${verb} ${resource} still says ${answer.trim()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** A fresh release for one case, disposed whatever happens. */
async function withRelease(router: string, body: (release: ClusterRelease) => Promise<void>): Promise<void> {
  const release = await aClusterRelease(router)
  try {
    await body(release)
  } finally {
    await release.dispose()
  }
}

/**
 * The rules every router shares (Deployments, Services, ConfigMaps) are removed one verb at a time
 * for `traefik`; for the other routers only their own rules are, after checking that the shared
 * ones are the same, so each verb of each rendered Role is proven without repeating 12 cases.
 */
const SHARED_RULES = 3
const ROUTERS = ['traefik', 'nginx', 'gateway-api'] as const

// Concurrently: every case has its own namespace, Role and token.
describe.concurrent.each(ROUTERS)('router %s: the rendered Role against the real RBAC authorizer', (router) => {
  const rules = renderedRules(router)

  it('shares its first rules (Deployments, Services, ConfigMaps) with router traefik', () => {
    expect(rules.slice(0, SHARED_RULES).flatMap((r) => r.resources)).toEqual(['deployments', 'services', 'configmaps'])
    expect(rules.slice(0, SHARED_RULES)).toEqual(renderedRules('traefik').slice(0, SHARED_RULES))
  })

  it('is enough for the whole lifecycle: start, status, step, promote, start, abort, down', async () => {
    await withRelease(router, async (release) => {
      const outcomes = await runLifecycle(release)
      for (const {args, result} of outcomes) expect(result.code, `canary ${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(0)
      expect(outcomes).toHaveLength(LIFECYCLE.length)
    })
  })

  const cases = rules.flatMap((rule, index) => rule.verbs.map((verb) => ({index, verb, rule}))).filter((c) => router === 'traefik' || c.index >= SHARED_RULES)
  it.each(cases)('without $verb on $rule.resources (rule $index): the command needing it exits 3 with E_FORBIDDEN naming both', async ({index, verb, rule}) => {
    await withRelease(router, async (release) => {
      const group = rule.apiGroups[0] ?? ''
      const resource = rule.resources[0]!
      const remaining = rule.verbs.filter((v) => v !== verb)
      kubectl(['-n', release.namespace, 'patch', 'role', 'canary-web', '--type=json', '-p', JSON.stringify([{op: 'replace', path: `/rules/${index}/verbs`, value: remaining}])])
      const qualified = group === '' ? resource : `${resource}.${group}`
      await waitUntilCanI(release, verb, qualified, 'no')

      const outcomes = await runLifecycle(release)
      const failed = outcomes.at(-1)!
      for (const {args, result} of outcomes.slice(0, -1)) expect(result.code, `canary ${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(0)
      expect(failed.result.code, `every command succeeded without ${verb} on ${qualified}: the renderer grants a verb canary never uses`).toBe(3)
      const error = (failed.result.json as {error: {code: string; message: string; verb: string; resource: string}}).error
      console.log(`${router}: without ${verb} ${qualified}, \`canary ${failed.args.join(' ')}\` exits 3: ${error.message}`)
      expect(error.code).toBe('E_FORBIDDEN')
      expect(error.verb).toBe(verb)
      expect(error.resource).toBe(qualified)
      expect(error.message).toContain(`cannot ${verb} resource "${resource}" in API group "${group}"`)
    })
  })
})
