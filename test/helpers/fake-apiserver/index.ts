/**
 * A test Kubernetes API server: a real node:http server on 127.0.0.1:0 that speaks the REST
 * protocol for the kinds canary touches, so the real @kubernetes/client-node can drive it through
 * a kubeconfig exactly as it drives a cluster. It implements discovery, GET/LIST/POST/PUT/PATCH
 * (merge, strategic-merge, JSON and apply patches), DELETE, resourceVersion preconditions, field
 * ownership for server-side apply, schema validation (422), a configurable RBAC denial (403), more
 * users with their own token and allow-list (a pod's service account beside the CLI's),
 * watch streams, status subresources, a Deployment "controller" tests can steer, and the pod
 * proxy path used to scrape metrics. Error bodies are metav1.Status, worded like the real ones.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {parse as parseYaml} from 'yaml'

import {applyMerge, displayField, isObject, jsonPatch, JsonPatchError, leafFields, mergePatch, removeField, strategicMergePatch, type JsonPatchOperation} from './patch.js'
import {apiVersionOf, findType, nameProblem, RESOURCE_TYPES, type KubeObject, type ResourceType} from './resources.js'
import {parseFieldSelector, parseLabelSelector} from './selectors.js'
import * as status from './status.js'

export type {KubeObject} from './resources.js'

/** One request as the fake saw it; tests assert on writes ("reconcile twice = no second write"). */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  readonly verb: string
  readonly resource: string | undefined
  readonly name: string | undefined
  readonly status: number
}

/** An RBAC rule that denies; omitted fields match anything. */
export interface DenyRule {
  readonly verb?: string
  readonly resource?: string
  readonly group?: string
  readonly namespace?: string
  readonly name?: string
}

/** An RBAC PolicyRule: when `allowRules` is set, only requests some rule allows get through. */
export interface AllowRule {
  readonly apiGroups: readonly string[]
  readonly resources: readonly string[]
  readonly verbs: readonly string[]
  readonly resourceNames?: readonly string[]
}

/** What the simulated Deployment controller does after a Deployment's spec changes. */
export type DeploymentBehaviour = 'available' | 'manual' | 'progress-deadline-exceeded'

export interface FakeApiServerOptions {
  /** Namespace of the kubeconfig's context (kubectl's default namespace). */
  readonly namespace?: string
  /** The user RBAC messages name. */
  readonly user?: string
}

interface ManagedEntry {
  operation: 'Apply' | 'Update'
  apiVersion: string
  time: string
  fields: Map<string, string>
}

interface StoredObject {
  type: ResourceType
  object: KubeObject
  managers: Map<string, ManagedEntry>
}

interface WatchEvent {
  readonly resourceVersion: number
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'
  readonly resourceType: ResourceType
  readonly object: KubeObject
}

interface Watcher {
  readonly resourceType: ResourceType
  readonly namespace: string | undefined
  readonly matches: (object: KubeObject) => boolean
  readonly response: http.ServerResponse
}

const TOKEN = 'fake-token'

/** Who sent a request: the kubeconfig's user, or one added with `addUser`. */
interface Identity {
  readonly user: string
  /** Allow-list of this user; undefined means the server-wide `allowRules`. */
  readonly allowRules?: readonly AllowRule[]
}
const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml']

class HttpFailure extends Error {
  constructor(readonly failure: status.StatusFailure) {
    super(String(failure.body.message))
  }
}

function fail(failure: status.StatusFailure): never {
  throw new HttpFailure(failure)
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z')
}

function keyOf(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${type.group}/${type.version}/${type.resource}/${namespace ?? ''}/${name}`
}

/** The part of an object whose fields have managers: labels, annotations and everything but status. */
function managedProjection(object: KubeObject): Record<string, unknown> {
  const {apiVersion: _a, kind: _k, status: _s, metadata, ...rest} = object
  const meta: Record<string, unknown> = {}
  if (metadata?.labels !== undefined) meta.labels = metadata.labels
  if (metadata?.annotations !== undefined) meta.annotations = metadata.annotations
  return Object.keys(meta).length === 0 ? rest : {...rest, metadata: meta}
}

function fieldsV1(fields: Map<string, string>): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const path of fields.keys()) {
    let node = root
    for (const token of path.split('\u001f')) {
      const keyed = /^=([^=]+)=(.*)$/.exec(token)
      const name = keyed === null ? `f:${token}` : `k:${JSON.stringify({[keyed[1] ?? '']: /^\d+$/.test(keyed[2] ?? '') ? Number(keyed[2]) : keyed[2]})}`
      node[name] ??= {}
      node = node[name] as Record<string, unknown>
    }
  }
  return root
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** Fills the defaults the real API server sets, so "write only on change" is tested against them. */
function applyDefaults(type: ResourceType, object: KubeObject): void {
  const spec = isObject(object.spec) ? object.spec : undefined
  if (type.kind === 'Deployment' && spec !== undefined) {
    spec.replicas ??= 1
    spec.progressDeadlineSeconds ??= 600
    spec.revisionHistoryLimit ??= 10
    spec.strategy ??= {type: 'RollingUpdate', rollingUpdate: {maxSurge: '25%', maxUnavailable: '25%'}}
  }
  if (type.kind === 'Service' && spec !== undefined) {
    spec.type ??= 'ClusterIP'
    spec.sessionAffinity ??= 'None'
    if (Array.isArray(spec.ports)) {
      for (const port of spec.ports) {
        if (isObject(port)) {
          port.protocol ??= 'TCP'
          port.targetPort ??= port.port
        }
      }
    }
  }
}

/** Starts a fake API server on 127.0.0.1:0 and writes a kubeconfig pointing at it. */
export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const server = new FakeApiServer(options)
  await server.listen()
  return server
}

export class FakeApiServer {
  readonly requests: RecordedRequest[] = []
  /** Rules that make the server answer 403 Forbidden. */
  readonly denyRules: DenyRule[] = []
  /** When set, RBAC is allow-list: a request no rule allows is 403 (like a Role bound to the user). */
  allowRules: readonly AllowRule[] | undefined
  /** Decides what the Deployment controller does with each Deployment after a spec change. */
  deploymentBehaviour: (deployment: KubeObject) => DeploymentBehaviour = () => 'available'
  readonly namespace: string
  readonly user: string
  url = ''
  kubeconfigPath = ''

  private readonly objects = new Map<string, StoredObject>()
  private readonly events: WatchEvent[] = []
  private readonly watchers = new Set<Watcher>()
  private readonly podProxies = new Map<string, string>()
  private readonly extraUsers = new Map<string, Identity>()
  private readonly http: http.Server
  private readonly directory: string
  private resourceVersion = 1000
  private uidCounter = 0
  private clusterIpCounter = 10

  constructor(options: FakeApiServerOptions) {
    this.namespace = options.namespace ?? 'default'
    this.user = options.user ?? 'system:serviceaccount:ci:canary'
    this.directory = mkdtempSync(join(tmpdir(), 'canary-fake-apiserver-'))
    this.http = http.createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) this.send(response, 500, {kind: 'Status', apiVersion: 'v1', status: 'Failure', message: String(error), reason: 'InternalError', code: 500})
      })
    })
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve))
    const {port} = this.http.address() as AddressInfo
    this.url = `http://127.0.0.1:${port}`
    this.kubeconfigPath = join(this.directory, 'kubeconfig')
    writeFileSync(this.kubeconfigPath, this.kubeconfig())
  }

  /** A kubeconfig for this server (context `fake`), plus a context `elsewhere` whose server is down. */
  kubeconfig(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      '    insecure-skip-tls-verify: true',
      '- name: elsewhere',
      '  cluster:',
      '    server: http://127.0.0.1:9',
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: ci',
      '  user:',
      `    token: ${TOKEN}`,
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: ci',
      `    namespace: ${this.namespace}`,
      '- name: elsewhere',
      '  context:',
      '    cluster: elsewhere',
      '    user: ci',
      'current-context: fake',
      '',
    ].join('\n')
  }

  async close(): Promise<void> {
    for (const watcher of this.watchers) watcher.response.end()
    this.watchers.clear()
    this.http.closeAllConnections()
    await new Promise<void>((resolve) => this.http.close(() => resolve()))
    rmSync(this.directory, {recursive: true, force: true})
  }

  /** Ends every open watch stream, as an API server restart or a watch timeout does. */
  endWatches(): void {
    for (const watcher of this.watchers) watcher.response.end()
    this.watchers.clear()
  }

  /** Writes (anything but GET), optionally only those for one resource. */
  writes(resource?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && (resource === undefined || r.resource === resource))
  }

  /** Creates an object directly, as another tool (`kubectl`) would. Returns the stored copy. */
  seed(object: KubeObject, manager = 'kubectl-client-side-apply'): KubeObject {
    const type = this.typeOf(object)
    const namespace = type.namespaced ? (object.metadata?.namespace ?? this.namespace) : undefined
    return structuredClone(this.create(type, namespace, structuredClone(object), manager))
  }

  /** The stored object, or undefined. */
  get(apiVersion: string, kind: string, namespace: string, name: string): KubeObject | undefined {
    const type = RESOURCE_TYPES.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind)
    if (type === undefined) throw new Error(`fake API server does not serve ${apiVersion} ${kind}`)
    const stored = this.objects.get(keyOf(type, type.namespaced ? namespace : undefined, name))
    return stored === undefined ? undefined : structuredClone(stored.object)
  }

  /** Every stored object of a kind in a namespace. */
  list(apiVersion: string, kind: string, namespace: string): KubeObject[] {
    return [...this.objects.values()].filter((s) => apiVersionOf(s.type) === apiVersion && s.type.kind === kind && s.object.metadata?.namespace === namespace).map((s) => structuredClone(s.object))
  }

  /** Sets a status through the status subresource path, as a controller would. */
  setStatus(apiVersion: string, kind: string, namespace: string, name: string, statusValue: Record<string, unknown>): void {
    const type = RESOURCE_TYPES.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind)
    const stored = type === undefined ? undefined : this.objects.get(keyOf(type, namespace, name))
    if (stored === undefined) throw new Error(`fake API server: no ${kind} ${namespace}/${name}`)
    const next = {...structuredClone(stored.object), status: structuredClone(statusValue)}
    this.commit(stored, next, 'MODIFIED')
  }

  /** What the Deployment controller reports when every replica of the current generation is available. */
  makeDeploymentAvailable(namespace: string, name: string): void {
    const deployment = this.get('apps/v1', 'Deployment', namespace, name)
    if (deployment === undefined) throw new Error(`fake API server: no Deployment ${namespace}/${name}`)
    this.setStatus('apps/v1', 'Deployment', namespace, name, availableStatus(deployment))
  }

  /** The pod proxy path `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/…` forwards to this base URL. */
  setPodProxy(namespace: string, pod: string, port: number, targetUrl: string): void {
    this.podProxies.set(`${namespace}/${pod}:${port}`, targetUrl)
  }

  /**
   * Adds a user with its own token, allowed only what `allowRules` grant (a Role bound to it), and
   * writes a kubeconfig for it. Returns the kubeconfig path. `denyRules` apply to every user.
   */
  addUser(user: string, allowRules: readonly AllowRule[]): string {
    const token = `fake-token-${this.extraUsers.size + 1}`
    this.extraUsers.set(token, {user, allowRules})
    const path = join(this.directory, `kubeconfig-${this.extraUsers.size}`)
    writeFileSync(path, this.kubeconfig().replace(`token: ${TOKEN}`, `token: ${token}`))
    return path
  }

  // ---- request handling ----

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake')
    const query = Object.fromEntries(url.searchParams)
    const record = (verb: string, resource: string | undefined, name: string | undefined, code: number) => {
      this.requests.push({method: request.method ?? 'GET', path: url.pathname, query, contentType: request.headers['content-type'], verb, resource, name, status: code})
    }
    const body = await readBody(request)
    const bearer = request.headers.authorization?.replace(/^Bearer /, '')
    const identity: Identity | undefined = bearer === TOKEN ? {user: this.user} : bearer === undefined ? undefined : this.extraUsers.get(bearer)
    if (identity === undefined) {
      const failure = status.unauthorized()
      record('', undefined, undefined, failure.code)
      this.send(response, failure.code, failure.body)
      return
    }
    const discovery = this.discovery(url.pathname)
    if (discovery !== undefined) {
      record('get', undefined, undefined, 200)
      this.send(response, 200, discovery)
      return
    }
    let verb = ''
    let resource: string | undefined
    let name: string | undefined
    try {
      const route = this.route(url.pathname)
      resource = route.podProxy !== undefined ? 'pods/proxy' : route.subresource === undefined ? route.type?.resource : `${route.type?.resource}/${route.subresource}`
      name = route.name
      if (route.podProxy !== undefined) {
        verb = 'get'
        this.authorize(identity, verb, {group: '', resource: 'pods'}, route.namespace, route.name, 'proxy')
        await this.proxyToPod(route.namespace ?? '', route.podProxy.pod, route.podProxy.port, route.podProxy.path, response)
        record(verb, resource, name, response.statusCode)
        return
      }
      const type = route.type as ResourceType
      const method = request.method ?? 'GET'
      verb = method === 'GET' ? (route.name === undefined ? (query.watch === 'true' || query.watch === '1' ? 'watch' : 'list') : 'get') : method === 'POST' ? 'create' : method === 'PUT' ? 'update' : method === 'PATCH' ? 'patch' : method === 'DELETE' ? 'delete' : ''
      if (verb === '') fail(status.methodNotAllowed())
      // Like the real server (apiserver requestinfo.go), a list or watch narrowed by the field selector
      // metadata.name=X is authorized as a request for X, so a Role with resourceNames can allow it.
      const selectedName = verb === 'list' || verb === 'watch' ? /(?:^|,)metadata\.name==?([^,]+)/.exec(query.fieldSelector ?? '')?.[1] : undefined
      this.authorize(identity, verb, type, route.namespace, route.name ?? selectedName, route.subresource)
      if (verb === 'watch') {
        record(verb, resource, name, 200)
        this.watch(type, route.namespace, url.searchParams, response)
        return
      }
      const result = this.dispatch(identity, verb, type, route.namespace, route.name, route.subresource, request.headers['content-type'], body, url.searchParams)
      record(verb, resource, name, result.code)
      this.send(response, result.code, result.body)
    } catch (error) {
      if (!(error instanceof HttpFailure)) throw error
      record(verb, resource, name, error.failure.code)
      this.send(response, error.failure.code, error.failure.body)
    }
  }

  private send(response: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body)
    response.writeHead(code, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)})
    response.end(text)
  }

  private discovery(path: string): unknown {
    const trimmed = path.replace(/\/$/, '')
    if (trimmed === '/version') return {major: '1', minor: '31', gitVersion: 'v1.31.0-canary-fake', platform: 'linux/amd64'}
    if (trimmed === '/api') return {kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1'}]}
    if (trimmed === '/apis') {
      const groups = [...new Set(RESOURCE_TYPES.filter((t) => t.group !== '').map((t) => t.group))]
      return {
        kind: 'APIGroupList', apiVersion: 'v1',
        groups: groups.map((group) => {
          const versions = [...new Set(RESOURCE_TYPES.filter((t) => t.group === group).map((t) => t.version))].map((version) => ({groupVersion: `${group}/${version}`, version}))
          return {name: group, versions, preferredVersion: versions[0]}
        }),
      }
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(trimmed)
    if (m === null) return undefined
    const group = m[1] === undefined ? (m[2] ?? '') : ''
    const version = m[1] ?? m[3] ?? ''
    const types = RESOURCE_TYPES.filter((t) => t.group === group && t.version === version)
    if (types.length === 0) return undefined
    const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']
    return {
      kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group === '' ? version : `${group}/${version}`,
      resources: types.flatMap((t) => [
        {name: t.resource, singularName: t.kind.toLowerCase(), namespaced: t.namespaced, kind: t.kind, verbs},
        ...(t.statusSubresource ? [{name: `${t.resource}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update']}] : []),
        ...(t.kind === 'Pod' ? [{name: 'pods/proxy', singularName: '', namespaced: true, kind: 'PodProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update']}] : []),
      ]),
    }
  }

  private route(path: string): {type?: ResourceType; namespace?: string; name?: string; subresource?: string; podProxy?: {resource: string; pod: string; port: number; path: string}} {
    const proxy = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/:]+):(\d+)\/proxy(\/.*)?$/.exec(path.replace(/%3A/gi, ':'))
    if (proxy !== null) {
      return {namespace: proxy[1], name: proxy[2], podProxy: {resource: 'pods', pod: proxy[2] ?? '', port: Number(proxy[3]), path: proxy[4] ?? '/'}}
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(path)
    if (m === null) fail(status.pathNotFound(path))
    const group = m[1] === undefined ? (m[2] ?? '') : ''
    const version = m[1] ?? m[3] ?? ''
    const type = findType(group, version, m[5] ?? '')
    if (type === undefined || (m[7] !== undefined && !(m[7] === 'status' && type.statusSubresource))) fail(status.pathNotFound(path))
    const namespace = m[4] === undefined ? undefined : decodeURIComponent(m[4])
    return {type, namespace, name: m[6] === undefined ? undefined : decodeURIComponent(m[6]), subresource: m[7]}
  }

  private authorize(identity: Identity, verb: string, type: {group: string; resource: string}, namespace: string | undefined, name: string | undefined, subresource?: string): void {
    const resource = subresource === undefined ? type.resource : `${type.resource}/${subresource}`
    const denied = this.denyRules.some((rule) =>
      (rule.verb === undefined || rule.verb === verb) &&
      (rule.resource === undefined || rule.resource === resource) &&
      (rule.group === undefined || rule.group === type.group) &&
      (rule.namespace === undefined || rule.namespace === namespace) &&
      (rule.name === undefined || rule.name === name))
    const allowRules = identity.allowRules ?? this.allowRules
    const allowed = allowRules === undefined || allowRules.some((rule) =>
      rule.verbs.includes(verb) && rule.apiGroups.includes(type.group) && rule.resources.includes(resource) &&
      (rule.resourceNames === undefined || (name !== undefined && rule.resourceNames.includes(name))))
    if (denied || !allowed) fail(status.forbidden(type, verb, identity.user, namespace, name, subresource))
  }

  private dispatch(identity: Identity, verb: string, type: ResourceType, namespace: string | undefined, name: string | undefined, subresource: string | undefined, contentType: string | undefined, body: string, query: URLSearchParams): {code: number; body: unknown} {
    const manager = query.get('fieldManager') ?? 'unknown'
    switch (verb) {
      case 'get':
        return {code: 200, body: this.mustGet(type, namespace, name ?? '').object}
      case 'list':
        return {code: 200, body: this.listBody(type, namespace, query)}
      case 'create': {
        const object = parseJson(body)
        if (namespace !== undefined) object.metadata = {...object.metadata, namespace}
        return {code: 201, body: this.create(type, namespace, object, manager)}
      }
      case 'update': {
        const object = parseJson(body)
        const stored = this.mustGet(type, namespace, name ?? '')
        const sentVersion = object.metadata?.resourceVersion
        if (sentVersion !== undefined && sentVersion !== stored.object.metadata?.resourceVersion) fail(status.staleConflict(type, name ?? ''))
        return {code: 200, body: this.update(stored, object, manager, subresource)}
      }
      case 'patch': {
        // An apply that creates the object answers 201 Created, like the real server.
        const existed = this.objects.has(keyOf(type, namespace, name ?? ''))
        return {code: existed ? 200 : 201, body: this.patch(identity, type, namespace, name ?? '', subresource, contentType ?? '', body, manager, query.get('force') === 'true')}
      }
      case 'delete': {
        const stored = this.mustGet(type, namespace, name ?? '')
        this.objects.delete(keyOf(type, namespace, name ?? ''))
        this.resourceVersion += 1
        const deleted = {...structuredClone(stored.object), metadata: {...stored.object.metadata, resourceVersion: String(this.resourceVersion)}}
        this.emit('DELETED', type, deleted)
        return {code: 200, body: {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: {name, group: type.group, kind: type.resource, uid: stored.object.metadata?.uid}}}
      }
      default:
        fail(status.methodNotAllowed())
    }
  }

  private mustGet(type: ResourceType, namespace: string | undefined, name: string): StoredObject {
    const stored = this.objects.get(keyOf(type, namespace, name))
    if (stored === undefined) fail(status.notFound(type, name))
    return stored
  }

  private selected(type: ResourceType, namespace: string | undefined, query: URLSearchParams): StoredObject[] {
    const labels = parseLabelSelector(query.get('labelSelector'))
    const fields = parseFieldSelector(query.get('fieldSelector'))
    return [...this.objects.values()]
      .filter((s) => s.type === type && (namespace === undefined || s.object.metadata?.namespace === namespace))
      .filter((s) => labels(s.object.metadata?.labels ?? {}) && fields(s.object))
  }

  private listBody(type: ResourceType, namespace: string | undefined, query: URLSearchParams): unknown {
    // Like the real server, list items carry no apiVersion/kind of their own.
    const items = this.selected(type, namespace, query).map((s) => {
      const {apiVersion: _a, kind: _k, ...rest} = s.object
      return rest
    })
    return {kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata: {resourceVersion: String(this.resourceVersion)}, items}
  }

  private validate(type: ResourceType, object: KubeObject): void {
    const name = object.metadata?.name ?? ''
    const nameIssue = name === '' ? 'Required value: name or generateName is required' : nameProblem(type, name)
    if (nameIssue !== null) fail(status.invalid(type, name, [{reason: 'FieldValueInvalid', field: 'metadata.name', message: name === '' ? nameIssue : `Invalid value: "${name}": ${nameIssue}`}]))
    for (const [key, value] of Object.entries(object.metadata?.labels ?? {})) {
      if (typeof value !== 'string' || value.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(value)) {
        fail(status.invalid(type, name, [{reason: 'FieldValueInvalid', field: `metadata.labels`, message: `Invalid value: "${String(value)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (label ${key})`}]))
      }
    }
    const causes: status.StatusCause[] = []
    try {
      const {managedFields: _m, ...metadata} = object.metadata ?? {}
      type.validate({...object, metadata})
    } catch (error) {
      const problems = (error as {errors?: Array<{instancePath?: string; message?: string; params?: {missingProperty?: string}}>}).errors ?? [{message: String(error)}]
      causes.push(...problems.map((p) => {
        const path = (p.instancePath ?? '').replace(/^\//, '').split('/').filter((s) => s !== '').join('.')
        const field = p.params?.missingProperty === undefined ? path : `${path === '' ? '' : `${path}.`}${p.params.missingProperty}`
        return {reason: p.params?.missingProperty === undefined ? 'FieldValueInvalid' : 'FieldValueRequired', field, message: p.params?.missingProperty === undefined ? `Invalid value: ${p.message ?? 'invalid'}` : 'Required value'}
      }))
    }
    if (type.kind === 'Deployment') {
      // The real server also checks the selector against the template's labels (apps validation), in the same answer.
      const spec = object.spec as {selector?: {matchLabels?: Record<string, string>}; template?: {metadata?: {labels?: Record<string, string>}}} | undefined
      const labels = spec?.template?.metadata?.labels ?? {}
      const matchLabels = spec?.selector?.matchLabels
      if (matchLabels === undefined || Object.entries(matchLabels).some(([k, v]) => labels[k] !== v)) {
        causes.push({reason: 'FieldValueInvalid', field: 'spec.template.metadata.labels', message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\``})
      }
    }
    if (causes.length > 0) fail(status.invalid(type, name, causes))
  }

  private create(type: ResourceType, namespace: string | undefined, object: KubeObject, manager: string, operation: 'Apply' | 'Update' = 'Update'): KubeObject {
    const name = object.metadata?.name ?? ''
    if (this.objects.has(keyOf(type, namespace, name))) fail(status.alreadyExists(type, name))
    if (object.apiVersion !== undefined && object.apiVersion !== apiVersionOf(type)) fail(status.badRequest(`the API version in the data (${object.apiVersion}) does not match the expected API version (${apiVersionOf(type)})`))
    object.apiVersion = apiVersionOf(type)
    object.kind = type.kind
    const {resourceVersion: _r, uid: _u, managedFields: _m, creationTimestamp: _c, generation: _g, ...metadata} = object.metadata ?? {}
    this.uidCounter += 1
    object.metadata = {...metadata, ...(namespace === undefined ? {} : {namespace}), uid: `00000000-0000-4000-8000-${String(this.uidCounter).padStart(12, '0')}`, creationTimestamp: timestamp(), generation: 1}
    if (type.statusSubresource) object.status = type.kind === 'Deployment' ? {} : undefined
    if (object.status === undefined) delete object.status
    applyDefaults(type, object)
    if (type.kind === 'Service' && isObject(object.spec) && object.spec.type !== 'ExternalName') {
      this.clusterIpCounter += 1
      object.spec.clusterIP ??= `10.96.0.${this.clusterIpCounter}`
    }
    this.validate(type, object)
    const stored: StoredObject = {type, object: {}, managers: new Map([[manager, {operation, apiVersion: apiVersionOf(type), time: timestamp(), fields: leafFields(managedProjection(object))}]])}
    this.objects.set(keyOf(type, namespace, name), stored)
    return this.commit(stored, object, 'ADDED')
  }

  /** Replaces an object (PUT or the result of a patch), keeping server-owned fields and tracking ownership. */
  private update(stored: StoredObject, incoming: KubeObject, manager: string, subresource: string | undefined, operation: 'Apply' | 'Update' = 'Update', appliedFields?: Map<string, string>): KubeObject {
    const live = stored.object
    const name = live.metadata?.name ?? ''
    if (incoming.metadata?.name !== undefined && incoming.metadata.name !== name) fail(status.badRequest(`the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`))
    const next: KubeObject = structuredClone(incoming)
    next.apiVersion = live.apiVersion
    next.kind = live.kind
    const {labels, annotations, ownerReferences, finalizers} = next.metadata ?? {}
    next.metadata = {...structuredClone(live.metadata), labels, annotations, ...(ownerReferences === undefined ? {} : {ownerReferences}), ...(finalizers === undefined ? {} : {finalizers})}
    for (const key of ['labels', 'annotations'] as const) if (next.metadata[key] === undefined) delete next.metadata[key]
    if (subresource === 'status') {
      const spec = structuredClone(live)
      spec.status = next.status
      return this.commit(stored, spec, 'MODIFIED')
    }
    if (stored.type.statusSubresource) {
      if (live.status === undefined) delete next.status
      else next.status = structuredClone(live.status)
    }
    applyDefaults(stored.type, next)
    if (stored.type.kind === 'Service' && isObject(next.spec) && isObject(live.spec)) next.spec.clusterIP ??= live.spec.clusterIP
    if (stored.type.kind === 'Deployment' && isObject(next.spec) && isObject(live.spec) && !deepEqual(next.spec.selector, live.spec.selector)) {
      fail(status.invalid(stored.type, name, [{reason: 'FieldValueInvalid', field: 'spec.selector', message: `Invalid value: ${JSON.stringify(next.spec.selector)}: field is immutable`}]))
    }
    this.validate(stored.type, next)
    const before = leafFields(managedProjection(live))
    const after = leafFields(managedProjection(next))
    if (appliedFields !== undefined) {
      stored.managers.set(manager, {operation, apiVersion: apiVersionOf(stored.type), time: timestamp(), fields: new Map(appliedFields)})
    } else {
      const changed = [...after].filter(([path, value]) => before.get(path) !== value).map(([path]) => path)
      if (changed.length > 0) {
        for (const entry of stored.managers.values()) for (const path of changed) entry.fields.delete(path)
        const entry = stored.managers.get(manager) ?? {operation, apiVersion: apiVersionOf(stored.type), time: timestamp(), fields: new Map<string, string>()}
        for (const path of changed) entry.fields.set(path, after.get(path) ?? '')
        entry.time = timestamp()
        stored.managers.set(manager, entry)
      }
    }
    for (const entry of stored.managers.values()) for (const path of [...entry.fields.keys()]) if (!after.has(path)) entry.fields.delete(path)
    for (const [other, entry] of [...stored.managers]) if (entry.fields.size === 0 && other !== manager) stored.managers.delete(other)
    if (deepEqual({...live, metadata: {...live.metadata, managedFields: undefined}}, {...next, metadata: {...next.metadata, managedFields: undefined}})) {
      // A no-op write changes nothing, not even resourceVersion (like the real server).
      stored.object = {...next, metadata: {...next.metadata, managedFields: this.managedFields(stored)}}
      return structuredClone(stored.object)
    }
    if (!deepEqual(managedProjection({...next, metadata: undefined}), managedProjection({...live, metadata: undefined}))) {
      next.metadata.generation = Number(live.metadata?.generation ?? 1) + 1
    }
    return this.commit(stored, next, 'MODIFIED')
  }

  private patch(identity: Identity, type: ResourceType, namespace: string | undefined, name: string, subresource: string | undefined, contentType: string, body: string, manager: string, force: boolean): KubeObject {
    const mediaType = contentType.split(';')[0]?.trim() ?? ''
    const accepted = type.custom ? PATCH_TYPES.filter((t) => t !== 'application/strategic-merge-patch+json') : PATCH_TYPES
    if (!accepted.includes(mediaType)) fail(status.unsupportedMediaType(mediaType, accepted))
    if (mediaType === 'application/apply-patch+yaml') return this.apply(identity, type, namespace, name, subresource, body, manager, force)
    const stored = this.mustGet(type, namespace, name)
    const live = stored.object
    let patched: KubeObject
    if (mediaType === 'application/json-patch+json') {
      let operations: unknown
      try {
        operations = JSON.parse(body)
      } catch (error) {
        fail(status.badRequest(`error decoding patch: ${String(error)}`))
      }
      if (!Array.isArray(operations)) fail(status.badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch'))
      try {
        patched = jsonPatch(live, operations as JsonPatchOperation[]) as KubeObject
      } catch (error) {
        // A failed `test` is 422 with a message naming nothing, as the real server answers (not 409).
        if (error instanceof JsonPatchError) fail(error.testFailed ? status.jsonPatchTestFailed() : status.invalid(type, name, [{message: error.message}]))
        throw error
      }
    } else {
      const patchBody = parseJson(body)
      const expected = patchBody.metadata?.resourceVersion
      if (expected !== undefined && expected !== live.metadata?.resourceVersion) fail(status.staleConflict(type, name))
      patched = (mediaType === 'application/merge-patch+json' ? mergePatch(live, patchBody) : strategicMergePatch(live, patchBody)) as KubeObject
    }
    return this.update(stored, patched, manager, subresource)
  }

  /** Server-side apply: conflicts with fields another manager set to a different value, unless forced. */
  private apply(identity: Identity, type: ResourceType, namespace: string | undefined, name: string, subresource: string | undefined, body: string, manager: string, force: boolean): KubeObject {
    let applied: KubeObject
    try {
      applied = parseYaml(body) as KubeObject
    } catch (error) {
      fail(status.badRequest(`error decoding YAML: ${String(error)}`))
    }
    if (!isObject(applied)) fail(status.badRequest('error decoding YAML: not an object'))
    if (manager === 'unknown') fail(status.badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'))
    if (applied.metadata?.name !== undefined && applied.metadata.name !== name) fail(status.badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`))
    const stored = this.objects.get(keyOf(type, namespace, name))
    if (stored === undefined) {
      // An apply that creates the object also needs "create" (apiserver handlers/patch.go withAuthorization).
      this.authorize(identity, 'create', type, namespace, name)
      const object = {...structuredClone(applied), metadata: {...applied.metadata, name, ...(namespace === undefined ? {} : {namespace})}}
      return this.create(type, namespace, object, manager, 'Apply')
    }
    const expected = applied.metadata?.resourceVersion
    if (expected !== undefined && expected !== stored.object.metadata?.resourceVersion) fail(status.staleConflict(type, name))
    const appliedFields = leafFields(managedProjection(applied))
    const liveFields = leafFields(managedProjection(stored.object))
    const conflicts: Array<{manager: string; field: string}> = []
    for (const [path, value] of appliedFields) {
      if (liveFields.get(path) === value) continue
      for (const [other, entry] of stored.managers) if (other !== manager && entry.fields.has(path)) conflicts.push({manager: other, field: displayField(path)})
    }
    if (conflicts.length > 0 && !force) fail(status.applyConflict(type, name, conflicts))
    for (const [other, entry] of stored.managers) {
      if (other === manager) continue
      for (const path of appliedFields.keys()) if (liveFields.get(path) !== appliedFields.get(path)) entry.fields.delete(path)
    }
    // Fields this manager applied before and no longer applies are removed, unless someone else owns them.
    const next = structuredClone(stored.object)
    const previous = stored.managers.get(manager)
    if (previous?.operation === 'Apply') {
      for (const path of previous.fields.keys()) {
        const ownedElsewhere = [...stored.managers].some(([other, entry]) => other !== manager && entry.fields.has(path))
        if (!appliedFields.has(path) && !ownedElsewhere) removeField(next, path)
      }
    }
    const {metadata: appliedMetadata, ...appliedRest} = applied
    const merged = applyMerge(next, {...appliedRest, metadata: {labels: appliedMetadata?.labels, annotations: appliedMetadata?.annotations}}) as KubeObject
    for (const key of ['labels', 'annotations'] as const) if (merged.metadata?.[key] === undefined) delete merged.metadata?.[key]
    if (subresource === 'status') return this.update(stored, merged, manager, subresource)
    return this.update(stored, merged, manager, subresource, 'Apply', appliedFields)
  }

  private managedFields(stored: StoredObject): unknown[] {
    return [...stored.managers].map(([manager, entry]) => ({manager, operation: entry.operation, apiVersion: entry.apiVersion, time: entry.time, fieldsType: 'FieldsV1', fieldsV1: fieldsV1(entry.fields)}))
  }

  /** Stores a new version: bumps resourceVersion, runs the Deployment controller, notifies watchers. */
  private commit(stored: StoredObject, object: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    this.resourceVersion += 1
    object.metadata = {...object.metadata, resourceVersion: String(this.resourceVersion), managedFields: this.managedFields(stored)}
    const previousGeneration = stored.object.metadata?.generation
    stored.object = object
    this.emit(type, stored.type, object)
    const result = structuredClone(object)
    if (stored.type.kind === 'Deployment' && object.metadata.generation !== previousGeneration) this.runDeploymentController(stored)
    return result
  }

  private runDeploymentController(stored: StoredObject): void {
    const behaviour = this.deploymentBehaviour(stored.object)
    if (behaviour === 'manual') return
    const next = structuredClone(stored.object)
    next.status = behaviour === 'available' ? availableStatus(next) : deadlineExceededStatus(next)
    this.commit(stored, next, 'MODIFIED')
  }

  // ---- watch ----

  private emit(type: WatchEvent['type'], resourceType: ResourceType, object: KubeObject): void {
    const event: WatchEvent = {resourceVersion: this.resourceVersion, type, resourceType, object: structuredClone(object)}
    this.events.push(event)
    for (const watcher of this.watchers) this.deliver(watcher, event)
  }

  private deliver(watcher: Watcher, event: WatchEvent): void {
    if (event.resourceType !== watcher.resourceType) return
    if (watcher.namespace !== undefined && event.object.metadata?.namespace !== watcher.namespace) return
    if (!watcher.matches(event.object)) return
    watcher.response.write(`${JSON.stringify({type: event.type, object: event.object})}\n`)
  }

  private watch(type: ResourceType, namespace: string | undefined, query: URLSearchParams, response: http.ServerResponse): void {
    const labels = parseLabelSelector(query.get('labelSelector'))
    const fields = parseFieldSelector(query.get('fieldSelector'))
    const watcher: Watcher = {resourceType: type, namespace, matches: (o) => labels(o.metadata?.labels ?? {}) && fields(o), response}
    const since = query.get('resourceVersion')
    const oldest = this.events[0]?.resourceVersion ?? this.resourceVersion
    if (since !== null && since !== '' && since !== '0' && Number(since) < oldest - 1) {
      const failure = status.gone(`too old resource version: ${since} (${oldest})`)
      response.writeHead(200, {'content-type': 'application/json'})
      response.end(`${JSON.stringify({type: 'ERROR', object: failure.body})}\n`)
      return
    }
    response.writeHead(200, {'content-type': 'application/json', 'transfer-encoding': 'chunked'})
    response.flushHeaders()
    if (since === null || since === '' || since === '0') {
      for (const stored of this.selected(type, namespace, query)) response.write(`${JSON.stringify({type: 'ADDED', object: stored.object})}\n`)
    } else {
      for (const event of this.events) if (event.resourceVersion > Number(since)) this.deliver(watcher, event)
    }
    this.watchers.add(watcher)
    response.on('close', () => this.watchers.delete(watcher))
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0)
    if (timeoutSeconds > 0) {
      const timer = setTimeout(() => response.end(), timeoutSeconds * 1000)
      response.on('close', () => clearTimeout(timer))
    }
  }

  // ---- pod proxy ----

  private async proxyToPod(namespace: string, pod: string, port: number, path: string, response: http.ServerResponse): Promise<void> {
    const podType = RESOURCE_TYPES.find((t) => t.kind === 'Pod') as ResourceType
    this.mustGet(podType, namespace, pod)
    const target = this.podProxies.get(`${namespace}/${pod}:${port}`)
    if (target === undefined) {
      const text = `error trying to reach service: dial tcp 10.244.0.1:${port}: connect: connection refused`
      this.send(response, 503, {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: text, reason: 'ServiceUnavailable', code: 503})
      return
    }
    const upstream = await fetch(new URL(path, target))
    const text = await upstream.text()
    response.writeHead(upstream.status, {'content-type': upstream.headers.get('content-type') ?? 'text/plain'})
    response.end(text)
  }

  private typeOf(object: KubeObject): ResourceType {
    const type = RESOURCE_TYPES.find((t) => apiVersionOf(t) === object.apiVersion && t.kind === object.kind)
    if (type === undefined) throw new Error(`fake API server does not serve ${object.apiVersion} ${object.kind}`)
    return type
  }
}

/** The status a Deployment controller reports once the current generation is fully rolled out. */
export function availableStatus(deployment: KubeObject): Record<string, unknown> {
  const spec = isObject(deployment.spec) ? deployment.spec : {}
  const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1
  const now = timestamp()
  return {
    observedGeneration: deployment.metadata?.generation ?? 1,
    replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas,
    conditions: [
      {type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.', lastUpdateTime: now, lastTransitionTime: now},
      {type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${deployment.metadata?.name ?? ''}-5d4f8c7b9" has successfully progressed.`, lastUpdateTime: now, lastTransitionTime: now},
    ],
  }
}

/** The status of a Deployment whose new pods never became ready before progressDeadlineSeconds. */
export function deadlineExceededStatus(deployment: KubeObject): Record<string, unknown> {
  const spec = isObject(deployment.spec) ? deployment.spec : {}
  const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1
  const now = timestamp()
  return {
    observedGeneration: deployment.metadata?.generation ?? 1,
    replicas, updatedReplicas: replicas, readyReplicas: 0, availableReplicas: 0, unavailableReplicas: replicas,
    conditions: [
      {type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.', lastUpdateTime: now, lastTransitionTime: now},
      {type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${deployment.metadata?.name ?? ''}-5d4f8c7b9" has timed out progressing.`, lastUpdateTime: now, lastTransitionTime: now},
    ],
  }
}

function parseJson(body: string): KubeObject {
  try {
    const value = JSON.parse(body) as unknown
    if (!isObject(value)) fail(status.badRequest('the request body is not a JSON object'))
    return value as KubeObject
  } catch (error) {
    if (error instanceof HttpFailure) throw error
    fail(status.badRequest(`error decoding request body: ${String(error)}`))
  }
}

async function readBody(request: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
