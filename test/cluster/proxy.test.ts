/**
 * Router `proxy` against the real API server: `canary start` applies the proxy's objects; the
 * bundled proxy then runs as the rendered pod would, in a pod network namespace (the Deployment's
 * args, the ConfigMap's proxy.yaml, CANARY_ADMIN_TOKEN from the Secret, a token the API server
 * issued for ServiceAccount web-proxy), follows its ConfigMap through a real watch, and canary
 * reads its /metrics through the real API server's pod proxy (the Pod object carries the pod's
 * IP, which the stand-in kubelet would report). Traffic is measured at the pod.
 */
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {kubeconfigText} from '../../scripts/cluster/cluster.js'
import {endpointSlice, getThrough, runInPod, type Pod, type PodProcess} from '../../scripts/cluster/pods.js'
import {REPO} from '../../scripts/cluster/toolchain.js'
import {aClusterRelease, cluster, kubectl, kubectlGet, measuredSplit, serve, steadyTraffic, type ClusterRelease} from './fixture.js'

/** Runs the rendered proxy pod in `pod` as kubelet would, and registers its Pod object and endpoints. */

async function runProxyPod(r: ClusterRelease, pod: Pod): Promise<PodProcess> {
  const deployment = kubectlGet(r.namespace, 'deployments.apps', 'web-proxy')!
  const template = deployment.spec.template
  const container = template.spec.containers[0] as {args: string[]; image: string}
  const mountPath = (template.spec.containers[0].volumeMounts as {mountPath: string}[])[0]!.mountPath
  const configFile = join(r.dir, 'proxy.yaml')
  writeFileSync(configFile, kubectlGet(r.namespace, 'configmaps', 'web-proxy-config')!.data['proxy.yaml'])
  const adminToken = Buffer.from(kubectlGet(r.namespace, 'secrets', 'web-proxy-admin')!.data.token as string, 'base64').toString('utf8')
  const saToken = kubectl(['-n', r.namespace, 'create', 'token', template.spec.serviceAccountName, '--duration=2h']).trim()
  const kubeconfig = join(r.dir, 'proxy-pod.kubeconfig')
  writeFileSync(kubeconfig, kubeconfigText(cluster.apiServer, cluster.caFile, 'web-proxy', saToken, r.namespace))
  // The one liberty: the ConfigMap volume is a file in a temp folder instead of a mount at /etc/canary.
  const args = container.args.map((a) => a.replace(`${mountPath}/`, `${r.dir}/`))
  const proxy = await runInPod(pod, process.execPath, [join(REPO, 'bin/run.js'), ...args], /./, {...process.env, KUBECONFIG: kubeconfig, CANARY_ADMIN_TOKEN: adminToken, NO_COLOR: '1'})
  r.processes.push(proxy)
  const deadline = Date.now() + 20_000
  while ((await getThrough(`http://${pod.ip}:9901/healthz`, {}).catch(() => ({status: 0}))).status !== 200) {
    if (Date.now() > deadline) throw new Error(`the proxy pod did not become healthy:\n${proxy.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const podObject = {apiVersion: 'v1', kind: 'Pod', metadata: {name: 'web-proxy-0', namespace: r.namespace, labels: template.metadata.labels}, spec: {serviceAccountName: template.spec.serviceAccountName, containers: [{name: 'proxy', image: container.image}]}}
  kubectl(['apply', '--server-side', '--field-manager=stand-in-kubelet', '-f', '-'], JSON.stringify(podObject))
  const status = {status: {phase: 'Running', podIP: pod.ip, podIPs: [{ip: pod.ip}], conditions: [{type: 'Ready', status: 'True'}]}}
  kubectl(['-n', r.namespace, 'patch', 'pod', 'web-proxy-0', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)])
  kubectl(['apply', '--server-side', '--field-manager=cluster-endpoints', '-f', '-'], endpointSlice(r.namespace, 'web-proxy', [pod.ip]))
  return proxy
}

// Concurrently: each test has its own namespace, host and pods.
describe.concurrent('router proxy: canary\'s proxy process as the pod, following its ConfigMap through the real API', () => {
  it('start → step → promote: the proxy follows every weight; the step is judged from /metrics read through the pod proxy', async ({onTestFinished}) => {
    const r = await aClusterRelease('proxy')
    onTestFinished(() => r.dispose())
    await serve(r, 'web', 'v1')
    await serve(r, 'web-canary', 'v2')
    const start = await r.canary(['start', '--image', 'v2', '--json'])
    expect(start.code, `${start.stdout}${start.stderr}`).toBe(0)
    const proxyPod = await r.leasePod()
    await runProxyPod(r, proxyPod)
    const entry = `http://${proxyPod.ip}:8080`
    const split10 = await measuredSplit(entry, {host: r.host}, 10)
    expect(Math.abs(split10.canary - 100)).toBeLessThanOrEqual(10)
    expect(split10.other).toBe(0)

    const traffic = steadyTraffic(entry, {host: r.host})
    const step = await r.canary(['step', '--wait', '--timeout', '60s', '--json'])
    await traffic.stop()
    expect(step.code, `${step.stdout}${step.stderr}`).toBe(0)
    const status = await r.canary(['status', '--json'])
    expect(status.json).toMatchObject({canaryWeight: 50})
    const split50 = await measuredSplit(entry, {host: r.host}, 50)
    expect(Math.abs(split50.canary - 500)).toBeLessThanOrEqual(10)

    const promote = await r.canary(['promote', '--force', '--json'])
    expect(promote.code, `${promote.stdout}${promote.stderr}`).toBe(0)
    expect(await measuredSplit(entry, {host: r.host}, 0)).toEqual({canary: 0, stable: 1000, other: 0})
  })

  it('start → abort: the proxy sends everything back to stable', async ({onTestFinished}) => {
    const r = await aClusterRelease('proxy')
    onTestFinished(() => r.dispose())
    await serve(r, 'web', 'v1')
    await serve(r, 'web-canary', 'v2')
    expect((await r.canary(['start', '--image', 'v2', '--json'])).code).toBe(0)
    const proxyPod = await r.leasePod()
    await runProxyPod(r, proxyPod)
    const entry = `http://${proxyPod.ip}:8080`
    await measuredSplit(entry, {host: r.host}, 10)
    const abort = await r.canary(['abort', '--json'])
    expect(abort.code, `${abort.stdout}${abort.stderr}`).toBe(0)
    expect(await measuredSplit(entry, {host: r.host}, 0)).toEqual({canary: 0, stable: 1000, other: 0})
  })
})
