/**
 * The harness's own end-to-end check, run by `up` before it reports ready: a backend in a pod's
 * network namespace, a real Service + EndpointSlice + IngressRoute, and one request through Traefik
 * that must reach it. Everything it creates is removed again.
 */
import {spawnSync} from 'node:child_process'


import type {ClusterInfo} from './cluster.js'
import {endpointSlice, getThrough, startBackend} from './pods.js'

const NAMESPACE = 'canary-harness'

export async function smokeTest(info: ClusterInfo): Promise<void> {
  const kubectl = (args: readonly string[], input?: string) => {
    const result = spawnSync(info.binaries.kubectl, ['--kubeconfig', info.adminKubeconfig, ...args], {input, encoding: 'utf8'})
    if (result.status !== 0) throw new Error(`smoke test: kubectl ${args.join(' ')}: ${result.stderr}`)
  }
  const pod = info.pods[0]!
  const backend = await startBackend(pod, 'smoke')
  const objects = [
    {apiVersion: 'v1', kind: 'Namespace', metadata: {name: NAMESPACE}},
    {apiVersion: 'v1', kind: 'Service', metadata: {name: 'smoke', namespace: NAMESPACE}, spec: {ports: [{name: 'http', port: 80, targetPort: 8080}]}},
    JSON.parse(endpointSlice(NAMESPACE, 'smoke', [pod.ip])),
    {apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', metadata: {name: 'smoke', namespace: NAMESPACE}, spec: {entryPoints: ['web'], routes: [{match: 'Host(`smoke.harness.test`)', kind: 'Rule', services: [{name: 'smoke', port: 80}]}]}},
  ]
  try {
    kubectl(['apply', '--server-side', '--field-manager=canary-harness', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n---\n'))
    const deadline = Date.now() + 30_000
    let last = ''
    for (;;) {
      const response = await getThrough(info.traefikUrl, {host: 'smoke.harness.test'}).catch((error: Error) => ({status: 0, body: error.message}))
      last = `${response.status} ${response.body.trim()}`
      if (last === '200 smoke') break
      if (Date.now() > deadline) throw new Error(`smoke test: Traefik did not route to the backend in ${pod.netns} (${pod.ip}) within 30 s; last answer: ${last}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    await backend.stop()
    kubectl(['delete', '--ignore-not-found', '-n', NAMESPACE, 'ingressroute.traefik.io/smoke', 'service/smoke', 'endpointslice/smoke-pods'])
  }
}
