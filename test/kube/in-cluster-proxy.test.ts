/**
 * Router `proxy` on a cluster, end to end against the fake API server: `canary start` applies the
 * proxy's objects (and its admin token Secret), a real bundled proxy is run the way kubelet would
 * run the rendered pod (its args, its ServiceAccount's permissions only, its env from the Secret,
 * its config from the mounted ConfigMap), it follows the routing ConfigMap through the API, and
 * canary reads its /metrics through the API server's pod proxy without the admin token.
 *
 * Not simulated: the pod network. The pod's fixed ports (8080, admin 0.0.0.0:9901) become free
 * loopback ports, and the fake's pod proxy forwards to the admin URL actually bound.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {connectKube} from '../../src/kube/client.js'
import {ForbiddenError} from '../../src/kube/errors.js'
import {createKubernetesPorts} from '../../src/targets/kubernetes/adapters.js'
import {followConfigMapIntoProxy} from '../../src/routers/proxy/config-sync.js'
import {buildRbac, rbacRules} from '../../src/targets/kubernetes/rbac.js'
import {loadProxyConfig} from '../../src/proxy/config.js'
import {startProxy, type RunningProxy} from '../../src/proxy/server.js'
import {planFromRelease} from '../../src/rollout/plan-from-release.js'
import {abortRollout, startRollout, stepRollout, type RolloutSession} from '../../src/rollout/services.js'
import type {Release} from '../../src/release/release.js'
import {ManualClock} from '../helpers/rollout/fakes.js'
import {startFakeApiServer, type AllowRule, type FakeApiServer, type KubeObject} from '../helpers/fake-apiserver/index.js'
import {seedProxyServiceAccount, testRelease} from './release-fixture.js'

interface PodContainer {
  args: string[]
  env?: Array<{name: string; value?: string; valueFrom?: {secretKeyRef?: {name: string; key: string}}}>
  volumeMounts?: Array<{name: string; mountPath: string}>
}
interface PodSpec {
  serviceAccountName?: string
  containers: PodContainer[]
  volumes?: Array<{name: string; configMap?: {name: string}}>
}

let fake: FakeApiServer
let controller: AbortController
let proxy: RunningProxy | undefined
let mountDir: string
const savedEnv = {KUBECONFIG: process.env.KUBECONFIG, CANARY_ADMIN_TOKEN: process.env.CANARY_ADMIN_TOKEN}

beforeEach(async () => {
  fake = await startFakeApiServer({namespace: 'shop'})
  controller = new AbortController()
  proxy = undefined
  mountDir = mkdtempSync(join(tmpdir(), 'canary-pod-'))
})

afterEach(async () => {
  controller.abort()
  await proxy?.close()
  await fake.close()
  rmSync(mountDir, {recursive: true, force: true})
  for (const [key, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  }
})

/** Polls `check` until it holds; fails with `what` after `ms`. */
async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function session(release: Release): Promise<RolloutSession> {
  const clock = new ManualClock(1_700_000_000_000)
  const ports = await createKubernetesPorts({release, specFile: 'release.yaml', kube: {kubeconfig: fake.kubeconfigPath}, clock})
  return {name: release.name, plan: planFromRelease(release), specImage: release.image.ref, ports, clock}
}

/**
 * What kubelet does with the rendered proxy pod, as far as canary depends on it: the ServiceAccount
 * must exist, each secretKeyRef must resolve (CreateContainerConfigError otherwise), the ConfigMap
 * volume is mounted; then the container's args are run. Returns the pod's kubeconfig and env.
 */
function preparePod(deployment: KubeObject, podKubeconfig: string): {args: string[]; env: Record<string, string>} {
  const pod = (deployment.spec as {template: {spec: PodSpec}}).template.spec
  const namespace = deployment.metadata?.namespace ?? ''
  const account = pod.serviceAccountName ?? 'default'
  if (fake.get('v1', 'ServiceAccount', namespace, account) === undefined) throw new Error(`pods "${deployment.metadata?.name}" is forbidden: error looking up service account ${namespace}/${account}`)
  const container = pod.containers[0]!
  const env: Record<string, string> = {KUBECONFIG: podKubeconfig}
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef
    if (ref === undefined) {
      env[variable.name] = variable.value ?? ''
      continue
    }
    const encoded = (fake.get('v1', 'Secret', namespace, ref.name)?.data as Record<string, string> | undefined)?.[ref.key]
    if (encoded === undefined) throw new Error(`CreateContainerConfigError: secret "${ref.name}" or its key "${ref.key}" not found`)
    env[variable.name] = Buffer.from(encoded, 'base64').toString('utf8')
  }
  let args = container.args
  for (const mount of container.volumeMounts ?? []) {
    const configMap = pod.volumes?.find((v) => v.name === mount.name)?.configMap
    if (configMap === undefined) continue
    const data = fake.get('v1', 'ConfigMap', namespace, configMap.name)?.data as Record<string, string> | undefined
    for (const [file, text] of Object.entries(data ?? {})) writeFileSync(join(mountDir, file), text.replace('0.0.0.0:8080', '127.0.0.1:0').replace('0.0.0.0:9901', '127.0.0.1:0'))
    args = args.map((arg) => arg.startsWith(`${mount.mountPath}/`) ? join(mountDir, arg.slice(mount.mountPath.length + 1)) : arg)
  }
  return {args, env}
}

/** `canary proxy --config FILE --follow-config-map NS/NAME`, in this process, with the pod's environment. */
async function runProxyCommand(args: string[], env: Record<string, string>, events: Array<Record<string, unknown>>): Promise<RunningProxy> {
  const flag = (name: string) => {
    const index = args.indexOf(name)
    if (index < 0) throw new Error(`the proxy container does not pass ${name}: ${args.join(' ')}`)
    return args[index + 1] ?? ''
  }
  expect(args[0]).toBe('proxy')
  const running = await startProxy(await loadProxyConfig(flag('--config'), env), {env, log: (event) => events.push(event)})
  // The follower connects like a pod does (KUBECONFIG here; the service account in a cluster) and parses with the process env.
  Object.assign(process.env, env)
  await followConfigMapIntoProxy(flag('--follow-config-map'), running, controller.signal, (event) => events.push(event))
  return running
}

describe('router proxy on a cluster', () => {
  it('start deploys a proxy that follows its ConfigMap with only its own Role, and whose /metrics canary reads without a token', async () => {
    const signal = controller.signal
    const release = testRelease({router: 'proxy', match: true})
    // Once, as an administrator: `canary render --rbac | kubectl apply -f -`.
    const rbac = buildRbac(release)
    for (const object of rbac) fake.seed(object)
    const proxyRules = (rbac.find((o) => o.kind === 'Role' && o.metadata?.name === 'web-proxy') as {rules: AllowRule[]}).rules
    const podKubeconfig = fake.addUser('system:serviceaccount:shop:web-proxy', proxyRules)
    // The CLI runs with exactly its rendered Role.
    fake.allowRules = rbacRules(release)
    const s = await session(release)

    await startRollout(s, {canaryImage: 'ghcr.io/acme/web:v2', signal})
    const secret = fake.get('v1', 'Secret', 'shop', 'web-proxy-admin')
    expect(secret?.metadata?.labels).toMatchObject({'app.kubernetes.io/managed-by': 'canary', 'canary.dev/release': 'web'})
    const token = Buffer.from((secret?.data as Record<string, string>).token ?? '', 'base64').toString('utf8')
    expect(token).toMatch(/^[0-9a-f]{64}$/)

    const deployment = fake.get('apps/v1', 'Deployment', 'shop', 'web-proxy')!
    const {args, env} = preparePod(deployment, podKubeconfig)
    expect(env.CANARY_ADMIN_TOKEN).toBe(token)
    const events: Array<Record<string, unknown>> = []
    proxy = await runProxyCommand(args, env, events)
    const canaryWeight = () => proxy?.state().services.web?.versions.find((v) => v.name === 'canary')?.weight
    expect(canaryWeight()).toBe(10)

    // A step writes the ConfigMap; the running proxy applies it from its watch.
    await stepRollout(s, {force: true, wait: false, signal})
    await until('the proxy serves 50 % to the canary', () => canaryWeight() === 50)
    expect(events.filter((e) => e.msg === 'routing ConfigMap applied').length).toBeGreaterThan(0)

    // /metrics through the API server's pod proxy, with the CLI's Role and no admin token.
    fake.seed({apiVersion: 'v1', kind: 'Pod', metadata: {name: 'web-proxy-7d9f', namespace: 'shop', labels: {app: 'web-proxy'}}, spec: {containers: [{name: 'proxy', image: release.proxy.image}]}})
    fake.setPodProxy('shop', 'web-proxy-7d9f', 9901, proxy.adminUrl)
    const cli = await connectKube({kubeconfig: fake.kubeconfigPath})
    const metrics = await cli.podProxyGet('shop', 'web-proxy-7d9f', 9901, '/metrics', signal)
    expect(metrics).toContain('canary_proxy_weight{service="web",version="canary"} 50')

    // The rest of the admin API still needs the token from the Secret; the probes' /healthz does not.
    expect((await fetch(`${proxy.adminUrl}/api/state`)).status).toBe(401)
    expect((await fetch(`${proxy.adminUrl}/api/state`, {headers: {authorization: `Bearer ${token}`}})).status).toBe(200)
    expect((await fetch(`${proxy.adminUrl}/healthz`)).status).toBe(200)

    // Abort sends everything back to stable, through the same watch.
    await abortRollout(s, {signal})
    await until('the proxy serves only stable', () => (canaryWeight() ?? 0) === 0 && proxy?.state().services.web?.versions.length === 1)
    expect(fake.requests.filter((r) => r.status === 403)).toEqual([])

    // The proxy's account reads its routing ConfigMap and nothing else.
    const pod = await connectKube({kubeconfig: podKubeconfig})
    await expect(pod.read({apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'web-canary-state'}, signal)).rejects.toBeInstanceOf(ForbiddenError)
  })

  it('keeps an existing admin Secret (no write, same token) and refuses one without the token key', async () => {
    const signal = controller.signal
    const release = testRelease({router: 'proxy'})
    seedProxyServiceAccount(fake)
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    const s = await session(release)
    await s.ports.prepare?.(release.image.ref, signal)
    const first = fake.get('v1', 'Secret', 'shop', 'web-proxy-admin')
    const writes = fake.writes('secrets').length
    await (await session(release)).ports.prepare?.(release.image.ref, signal)
    expect(fake.writes('secrets').length).toBe(writes)
    expect(fake.get('v1', 'Secret', 'shop', 'web-proxy-admin')?.data).toEqual(first?.data)

    await client.delete({apiVersion: 'v1', kind: 'Secret', namespace: 'shop', name: 'web-proxy-admin'}, signal)
    fake.seed({apiVersion: 'v1', kind: 'Secret', metadata: {name: 'web-proxy-admin', namespace: 'shop'}, data: {password: Buffer.from('x').toString('base64')}})
    await expect(s.ports.prepare?.(release.image.ref, signal)).rejects.toThrow('Secret shop/web-proxy-admin: cannot use it as the proxy\'s admin token: it has no key "token"')
  })

  it('start refuses (exit 3, naming it) when the proxy\'s ServiceAccount was never applied, before applying any proxy object', async () => {
    const release = testRelease({router: 'proxy'})
    const s = await session(release)
    const error = await s.ports.prepare?.(release.image.ref, controller.signal).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).exitCode).toBe(3)
    expect((error as ConfigError).message).toContain('ServiceAccount shop/web-proxy: cannot deploy the proxy: it does not exist')
    expect((error as ConfigError).suggestions.join(' ')).toContain('canary render --rbac')
    expect(fake.get('apps/v1', 'Deployment', 'shop', 'web-proxy')).toBeUndefined()
    expect(fake.get('v1', 'Secret', 'shop', 'web-proxy-admin')).toBeUndefined()
  })

  it('a pod without the Secret cannot start, and the rendered config refuses an admin listener without the token', async () => {
    const release = testRelease({router: 'proxy'})
    for (const object of buildRbac(release)) fake.seed(object)
    const s = await session(release)
    await s.ports.prepare?.(release.image.ref, controller.signal)
    const client = await connectKube({kubeconfig: fake.kubeconfigPath})
    await client.delete({apiVersion: 'v1', kind: 'Secret', namespace: 'shop', name: 'web-proxy-admin'}, controller.signal)
    expect(() => preparePod(fake.get('apps/v1', 'Deployment', 'shop', 'web-proxy')!, fake.kubeconfigPath)).toThrow(/CreateContainerConfigError/)
    const text = (fake.get('v1', 'ConfigMap', 'shop', 'web-proxy-config')?.data as Record<string, string>)['proxy.yaml'] ?? ''
    const file = join(mountDir, 'proxy.yaml')
    writeFileSync(file, text)
    const error = await loadProxyConfig(file, {}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect(JSON.stringify((error as ConfigError).problems)).toContain('CANARY_ADMIN_TOKEN')
  })
})
