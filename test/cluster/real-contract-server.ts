/**
 * The contracts' servers on the real kube-apiserver. The router contract's `ContractApiServer`: a fresh namespace per test,
 * `buildRbac(release)` (what `canary render --rbac` prints) applied by the administrator, and the
 * CLI identity a token the server issued for the rendered ServiceAccount. Writes are counted from
 * the API server's audit log, the server's own record of every request. The protocol contract's
 * `ProtocolServer`: a fresh namespace and an identity allowed every verb on the resources it uses.
 */
import {closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {kubeconfigText} from '../../scripts/cluster/cluster.js'
import {connectKube, type KubeClient} from '../../src/kube/client.js'
import {buildRbac} from '../../src/targets/kubernetes/rbac.js'
import {startBackend, type Pod, type PodProcess} from '../../scripts/cluster/pods.js'
import type {KubeObject} from '../helpers/fake-apiserver/index.js'
import type {ProtocolServer} from '../kube/apiserver-protocol.contract.js'
import type {ContractApiServer, ContractApiServerFactory} from '../kube/traffic-router.contract.js'
import {cluster, kubectl, leasePod, releasePod} from './fixture.js'

const signal = new AbortController().signal
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection'])

let admin: Promise<KubeClient> | undefined
let counter = 0

/** Audit events appended since `offset`, parsed. */
function auditEventsSince(offset: number): {events: AuditEvent[]; end: number} {
  const end = statSync(cluster.auditLog).size
  const buffer = Buffer.alloc(end - offset)
  const fd = openSync(cluster.auditLog, 'r')
  try {
    readSync(fd, buffer, 0, buffer.length, offset)
  } finally {
    closeSync(fd)
  }
  const text = buffer.toString('utf8')
  // Only whole lines: the last one may still be being written.
  const complete = text.slice(0, text.lastIndexOf('\n') + 1)
  const events = complete.split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditEvent)
  return {events, end: offset + Buffer.byteLength(complete)}
}

interface AuditEvent {
  stage: string
  verb: string
  user: {username: string}
  objectRef?: {resource?: string; namespace?: string; name?: string}
}

export const realContractServer: ContractApiServerFactory = async (setup, release) => {
  admin ??= connectKube({kubeconfig: cluster.adminKubeconfig})
  const client = await admin
  const namespace = `contract-${process.pid % 10_000}-${++counter}`
  await client.create({apiVersion: 'v1', kind: 'Namespace', metadata: {name: namespace}}, signal)
  const rbac = buildRbac({...release, namespace})
  for (const object of rbac) await client.create(object, signal)
  const k8s = await import('@kubernetes/client-node')
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(cluster.adminKubeconfig)
  const token = await kc.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccountToken({name: 'canary', namespace, body: {spec: {audiences: [], expirationSeconds: 3600}}})
  const dir = mkdtempSync(join(tmpdir(), 'canary-contract-'))
  const kubeconfigPath = join(dir, 'kubeconfig')
  writeFileSync(kubeconfigPath, kubeconfigText(cluster.apiServer, cluster.caFile, 'canary-ci', token.status!.token, namespace), {mode: 0o600})
  const user = `system:serviceaccount:${namespace}:canary`
  const identity = await connectKube({kubeconfig: kubeconfigPath})
  let offset = statSync(cluster.auditLog).size
  let writes = 0
  let markers = 0
  const role = rbac.find((o) => o.kind === 'Role' && o.metadata?.name === `canary-${release.name}`) as KubeObject & {rules: {apiGroups: string[]; resources: string[]; verbs: string[]}[]}

  const server: ContractApiServer = {
    namespace,
    kubeconfigPath,
    get: (apiVersion, kind, name) => client.read({apiVersion, kind, namespace, name}, signal),
    async seed(object) {
      return client.create({...object, metadata: {...object.metadata, namespace}}, signal)
    },
    async writeCount() {
      // A marker request by the same identity, then read the log until it shows: every earlier request is logged by then.
      const marker = `audit-marker-${++markers}`
      await identity.read({apiVersion: 'v1', kind: 'ConfigMap', namespace, name: marker}, signal).catch(() => undefined)
      const deadline = Date.now() + 30_000
      for (;;) {
        const {events, end} = auditEventsSince(offset)
        offset = end
        let seen = false
        for (const event of events) {
          if (event.stage !== 'ResponseComplete' || event.user.username !== user) continue
          if (WRITE_VERBS.has(event.verb)) writes++
          if (event.objectRef?.name === marker) seen = true
        }
        if (seen) return writes
        if (Date.now() > deadline) throw new Error(`the audit log ${cluster.auditLog} did not show ${marker} within 30 s`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    async deny(verb, resource) {
      const rules = role.rules.map((r) => (r.resources.includes(resource) ? {...r, verbs: r.verbs.filter((v) => v !== verb)} : r))
      await client.mergePatch({apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', namespace, name: role.metadata!.name!}, {rules}, signal)
      // RBAC is served from an informer cache: wait until the server says no.
      const group = role.rules.find((r) => r.resources.includes(resource))?.apiGroups[0] ?? ''
      const groups = ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated']
      const authorization = kc.makeApiClient(k8s.AuthorizationV1Api)
      const deadline = Date.now() + 30_000
      for (;;) {
        const review = await authorization.createSubjectAccessReview({body: {spec: {user, groups, resourceAttributes: {namespace, verb, resource, group}}}})
        if (review.status?.allowed !== true) return
        if (Date.now() > deadline) throw new Error(`${user} may still ${verb} ${resource} 30 s after the Role changed`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
    async close() {
      rmSync(dir, {recursive: true, force: true})
    },
  }
  return server
}

/** What the protocol contract's identity may do: every verb, one rule per resource so `deny` can take one verb from one resource. */
const PROTOCOL_RESOURCES: readonly {group: string; resource: string}[] = [
  {group: 'apps', resource: 'deployments'}, {group: '', resource: 'configmaps'}, {group: '', resource: 'secrets'},
  {group: '', resource: 'pods'}, {group: '', resource: 'pods/proxy'}, {group: 'traefik.io', resource: 'traefikservices'},
  {group: 'gateway.networking.k8s.io', resource: 'httproutes'},
]
const ALL_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']

/** A fresh namespace, a ServiceAccount bound to `rules` there, and a kubeconfig holding a token the server issued for it. */
async function identity(namespace: string, name: string, rules: readonly {apiGroups: readonly string[]; resources: readonly string[]; verbs: readonly string[]; resourceNames?: readonly string[]}[], dir: string): Promise<{kubeconfigPath: string; user: string}> {
  const client = await (admin ??= connectKube({kubeconfig: cluster.adminKubeconfig}))
  await client.create({apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name, namespace}}, signal)
  await client.create({apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name, namespace}, rules: rules.map((r) => ({...r}))}, signal)
  await client.create({apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name, namespace}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name}, subjects: [{kind: 'ServiceAccount', name, namespace}]}, signal)
  const k8s = await import('@kubernetes/client-node')
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(cluster.adminKubeconfig)
  const token = await kc.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccountToken({name, namespace, body: {spec: {audiences: [], expirationSeconds: 3600}}})
  const kubeconfigPath = join(dir, `${name}.kubeconfig`)
  writeFileSync(kubeconfigPath, kubeconfigText(cluster.apiServer, cluster.caFile, name, token.status!.token, namespace), {mode: 0o600})
  const user = `system:serviceaccount:${namespace}:${name}`
  await untilAuthorized(user, namespace, rules[0]!.verbs[0]!, rules[0]!.resources[0]!, rules[0]!.apiGroups[0]!, true, rules[0]!.resourceNames?.[0])
  return {kubeconfigPath, user}
}

/** RBAC is served from an informer cache: waits until a SubjectAccessReview for `user` answers `allowed`. */
async function untilAuthorized(user: string, namespace: string, verb: string, resource: string, group: string, allowed: boolean, name?: string): Promise<void> {
  const k8s = await import('@kubernetes/client-node')
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(cluster.adminKubeconfig)
  const authorization = kc.makeApiClient(k8s.AuthorizationV1Api)
  const [base, subresource] = resource.split('/')
  const groups = ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated']
  const deadline = Date.now() + 30_000
  for (;;) {
    const review = await authorization.createSubjectAccessReview({body: {spec: {user, groups, resourceAttributes: {namespace, verb, resource: base, group, ...(subresource === undefined ? {} : {subresource}), ...(name === undefined ? {} : {name})}}}})
    if ((review.status?.allowed === true) === allowed) return
    if (Date.now() > deadline) throw new Error(`${user}: ${verb} ${resource} still ${allowed ? 'denied' : 'allowed'} 30 s after the Role changed`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** The protocol contract's server on the real kube-apiserver. */
export async function realProtocolServer(): Promise<ProtocolServer> {
  const client = await (admin ??= connectKube({kubeconfig: cluster.adminKubeconfig}))
  const namespace = `protocol-${process.pid % 10_000}-${++counter}`
  await client.create({apiVersion: 'v1', kind: 'Namespace', metadata: {name: namespace}}, signal)
  const dir = mkdtempSync(join(tmpdir(), 'canary-protocol-'))
  let rules = PROTOCOL_RESOURCES.map((r) => ({apiGroups: [r.group], resources: [r.resource], verbs: [...ALL_VERBS]}))
  const main = await identity(namespace, 'canary', rules, dir)
  const started: PodProcess[] = []
  const leased: Pod[] = []
  return {
    namespace,
    kubeconfigPath: main.kubeconfigPath,
    user: main.user,
    get: (apiVersion, kind, name) => client.read({apiVersion, kind, namespace, name}, signal),
    seed: (object) => client.create({...object, metadata: {...object.metadata, namespace}}, signal),
    async deny(verb, resource) {
      rules = rules.map((r) => (r.resources.includes(resource) ? {...r, verbs: r.verbs.filter((v) => v !== verb)} : r))
      await client.mergePatch({apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', namespace, name: 'canary'}, {rules}, signal)
      await untilAuthorized(main.user, namespace, verb, resource, rules.find((r) => r.resources.includes(resource))?.apiGroups[0] ?? '', false)
    },
    addUser: (name, allowRules) => identity(namespace, name, allowRules, dir),
    async podUpstream(name) {
      // A backend in one of the harness's pods, and a Pod object whose status carries that pod's IP (no kubelet: set by the administrator).
      const pod = await leasePod()
      leased.push(pod)
      const port = 9090
      started.push(await startBackend(pod, name, {port}))
      await client.create({apiVersion: 'v1', kind: 'Pod', metadata: {name, namespace}, spec: {containers: [{name: 'proxy', image: 'canary:1'}]}}, signal)
      kubectl(['-n', namespace, 'patch', 'pod', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({status: {phase: 'Running', podIP: pod.ip, podIPs: [{ip: pod.ip}]}})])
      return {port, bodyFor: () => `${name}\n`, stop: async () => Promise.all(started.splice(0).map((p) => p.stop())).then(() => undefined)}
    },
    async close() {
      await Promise.all(started.map((p) => p.stop()))
      for (const pod of leased.splice(0)) releasePod(pod)
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
