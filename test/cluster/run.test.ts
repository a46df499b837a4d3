/**
 * `canary run` judged from real metrics: a real Prometheus (Debian's) scrapes real Traefik's
 * /metrics, canary's Prometheus source reads it with the built-in Traefik queries (router traefik)
 * or user PromQL (router gateway-api). A canary answering 500 to 15 % of requests is rolled back
 * (exit 10), a healthy one promoted (exit 0).
 */
import {describe, expect, it} from 'vitest'

import {aClusterRelease, cluster, kubectlGet, serve, steadyTraffic} from './fixture.js'

// Concurrently: each test has its own namespace, host and pods, and waits mostly on the judge.
describe.concurrent.each(['traefik', 'gateway-api'])('canary run, router %s, judged from Prometheus scraping Traefik', (router) => {
  it.for([
    {canary: 'healthy', errorPercent: 0, exit: 0, phase: 'Promoted', stableImage: 'ghcr.io/acme/web:v2'},
    {canary: 'answering 500 to 15 % of requests', errorPercent: 15, exit: 10, phase: 'RolledBack', stableImage: 'ghcr.io/acme/web:v1'},
  ])('a $canary canary: exit $exit', async ({errorPercent, exit, phase, stableImage}, {onTestFinished}) => {
    const release = await aClusterRelease(router)
    onTestFinished(() => release.dispose())
    await serve(release, 'web', 'v1')
    await serve(release, 'web-canary', 'v2', {errorPercent})
    const traffic = steadyTraffic(cluster.traefikUrl, {host: release.host})
    const run = await release.canary(['run', '--image', 'v2', '--timeout', '3m', '--json'])
    const statuses = await traffic.stop()
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(exit)
    expect(run.json).toMatchObject({exitCode: exit, status: {phase}})
    expect(kubectlGet(release.namespace, 'deployments.apps', 'web')?.spec.template.spec.containers[0].image).toBe(stableImage)
    expect(kubectlGet(release.namespace, 'deployments.apps', 'web-canary')).toBeUndefined()
    // The bad canary's 500s really went through Traefik; the healthy run saw none.
    if (errorPercent === 0) expect(statuses[500]).toBeUndefined()
    else expect(statuses[500]).toBeGreaterThan(0)
  })
})
