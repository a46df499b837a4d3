/** The Kubernetes target: kubectl's rollout-status rules, adoption of a user's stable Deployment, promote. */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {TimeoutError} from '../../src/errors.js'
import {connectKube} from '../../src/kube/client.js'
import {deploymentReadiness, KubernetesTarget} from '../../src/targets/kubernetes/kubernetes-target.js'
import {ManualClock} from '../helpers/rollout/fakes.js'
import {startFakeApiServer, type FakeApiServer, type KubeObject} from '../helpers/fake-apiserver/index.js'
import {testRelease} from './release-fixture.js'

const signal = new AbortController().signal

function deployment(generation: number, replicas: number, status: Record<string, unknown>): KubeObject {
  return {apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', generation}, spec: {replicas}, status}
}

describe('deploymentReadiness (kubectl rollout status rules)', () => {
  const cases: Array<[string, KubeObject | undefined, boolean, string | undefined]> = [
    ['absent', undefined, false, 'does not exist'],
    ['generation not observed yet', deployment(2, 2, {observedGeneration: 1, updatedReplicas: 2, replicas: 2, availableReplicas: 2}), false, 'observe generation 2'],
    ['not all replicas updated', deployment(1, 3, {observedGeneration: 1, updatedReplicas: 1, replicas: 3, availableReplicas: 3}), false, '1 of 3 replicas updated'],
    ['old replicas still terminating', deployment(1, 2, {observedGeneration: 1, updatedReplicas: 2, replicas: 3, availableReplicas: 2}), false, '1 old replicas'],
    ['updated but not available', deployment(1, 2, {observedGeneration: 1, updatedReplicas: 2, replicas: 2, availableReplicas: 1}), false, '1 of 2 updated replicas available'],
    ['rolled out', deployment(1, 2, {observedGeneration: 1, updatedReplicas: 2, replicas: 2, availableReplicas: 2}), true, undefined],
  ]
  for (const [name, object, ready, reason] of cases) {
    it(`${name} → ${ready ? 'ready' : 'not ready'}`, () => {
      const readiness = deploymentReadiness(object, 'Deployment shop/web')
      expect(readiness.ready).toBe(ready)
      if (reason !== undefined) expect(readiness.reason).toContain(reason)
    })
  }

  it('ProgressDeadlineExceeded is a failure, not just "not ready"', () => {
    const readiness = deploymentReadiness(deployment(1, 1, {observedGeneration: 1, updatedReplicas: 1, replicas: 1, availableReplicas: 0, conditions: [{type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out'}]}), 'Deployment shop/web')
    expect(readiness).toMatchObject({ready: false, failed: true})
  })
})

describe('KubernetesTarget against the fake API server', () => {
  let fake: FakeApiServer
  beforeEach(async () => {
    fake = await startFakeApiServer({namespace: 'shop'})
  })
  afterEach(async () => {
    await fake.close()
  })

  it('adopts a user\'s stable Deployment as is, and promote changes only its image', async () => {
    fake.seed({apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', namespace: 'shop', labels: {team: 'shop'}}, spec: {replicas: 3, selector: {matchLabels: {app: 'web', track: 'stable'}}, template: {metadata: {labels: {app: 'web', track: 'stable'}}, spec: {containers: [{name: 'server', image: 'ghcr.io/acme/web:v1'}, {name: 'envoy', image: 'envoy:1'}]}}}})
    const before = fake.get('apps/v1', 'Deployment', 'shop', 'web')
    const target = new KubernetesTarget(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease(), new ManualClock(0))
    await target.deployCanary('ghcr.io/acme/web:v2', signal)
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web')).toEqual(before)
    await target.promote('ghcr.io/acme/web:v2', signal)
    const after = fake.get('apps/v1', 'Deployment', 'shop', 'web') as {metadata: {labels: Record<string, string>}; spec: {replicas: number; template: {spec: {containers: Array<{name: string; image: string}>}}}}
    expect(after.spec.template.spec.containers).toEqual([{name: 'server', image: 'ghcr.io/acme/web:v2'}, {name: 'envoy', image: 'envoy:1'}])
    expect(after.spec.replicas).toBe(3)
    expect(after.metadata.labels).toEqual({team: 'shop'})
  })

  it('promote that never rolls out is a TimeoutError (exit 14) naming the Deployment', async () => {
    const target = new KubernetesTarget(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease(), new ManualClock(0), {pollIntervalMs: 1000})
    await target.deployCanary('ghcr.io/acme/web:v2', signal)
    fake.deploymentBehaviour = () => 'manual'
    const error = await target.promote('ghcr.io/acme/web:v2', signal).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TimeoutError)
    expect((error as TimeoutError).exitCode).toBe(14)
    expect((error as TimeoutError).message).toContain('Deployment shop/web: rollout did not finish within 30s')
  })

  it('removeCanary is idempotent', async () => {
    const target = new KubernetesTarget(await connectKube({kubeconfig: fake.kubeconfigPath}), testRelease(), new ManualClock(0))
    await target.deployCanary('ghcr.io/acme/web:v2', signal)
    await target.removeCanary(signal)
    await target.removeCanary(signal)
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-canary')).toBeUndefined()
  })
})
