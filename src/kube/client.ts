/**
 * The one door to the Kubernetes API: a small client on node:http(s), speaking the API's REST
 * conventions directly. @kubernetes/client-node used to be this door; importing it cost ~400 ms of
 * every cluster command, more than the rest of a `canary step` (figures in
 * bench/cluster.ts). Kubeconfig resolution follows kubectl (src/kube/kubeconfig.ts); `--context`
 * picks the context and `-n/--namespace` overrides the context's namespace.
 *
 * No discovery for the kinds canary writes: their resource names and scope are the table in
 * objects.ts, the same one `canary render --rbac` grants. Any other kind is looked up once per
 * process (`/apis/<group>/<version>`).
 */
import type {Agent as HttpAgent, IncomingMessage} from 'node:http'

import {NotFoundError} from '../errors.js'
import {mapKubeError} from './errors.js'
import {loadKubeconfig, type Credentials, type KubeConnection} from './kubeconfig.js'
import {FIELD_MANAGER, KIND_RESOURCES, resourceOf, subjectOf, type KubeObject, type ObjectRef} from './objects.js'

/** kubectl's connection flags. */
export interface KubeConnectionOptions {
  /** Path of a kubeconfig file (`--kubeconfig`); otherwise KUBECONFIG, ~/.kube/config, in-cluster. */
  readonly kubeconfig?: string
  /** Context name (`--context`); the kubeconfig's current context otherwise. */
  readonly context?: string
  /** Namespace (`-n`); the context's namespace, then `default`, otherwise. */
  readonly namespace?: string
}

/** One watch event, as the API streams it. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  readonly object: KubeObject
}

/** The API calls canary makes. Every method maps failures to CanaryErrors naming object and verb. */
export interface KubeClient {
  /** Namespace from `-n`, the context, or `default`. */
  readonly namespace: string
  /** The API server URL, for messages. */
  readonly server: string
  /** The object, or undefined when it does not exist. */
  read(ref: ObjectRef, signal: AbortSignal): Promise<KubeObject | undefined>
  list(apiVersion: string, kind: string, namespace: string, labelSelector: string | undefined, signal: AbortSignal): Promise<KubeObject[]>
  create(object: KubeObject, signal: AbortSignal): Promise<KubeObject>
  /** PUT, guarded by `metadata.resourceVersion` when the object carries one (409 → ConflictError). */
  replace(object: KubeObject, signal: AbortSignal): Promise<KubeObject>
  /** Server-side apply with field manager `canary`; `force` takes over fields other managers set. */
  apply(object: KubeObject, options: {readonly force: boolean}, signal: AbortSignal): Promise<KubeObject>
  /** JSON merge patch (RFC 7386): works on every kind, custom resources included. */
  mergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject>
  /** Strategic merge patch: built-in kinds only; containers merge by name. */
  strategicMergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject>
  /** True when it was deleted, false when it was already gone. */
  delete(ref: ObjectRef, signal: AbortSignal): Promise<boolean>
  /** Streams events for one object (from `resourceVersion`) until the signal aborts; `onEnd` runs when the stream ends otherwise. */
  watch(ref: ObjectRef, resourceVersion: string | undefined, onEvent: (event: WatchEvent) => void, onEnd: (error: unknown) => void, signal: AbortSignal): Promise<void>
  /** GET through the API server's pod proxy: `/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}`. */
  podProxyGet(namespace: string, pod: string, port: number, path: string, signal: AbortSignal): Promise<string>
}

/** Loads the kubeconfig (kubectl conventions) and returns a client; nothing is sent yet. */
export async function connectKube(options: KubeConnectionOptions = {}): Promise<KubeClient> {
  const connection = await loadKubeconfig({...(options.kubeconfig === undefined ? {} : {kubeconfig: options.kubeconfig}), ...(options.context === undefined ? {} : {context: options.context})})
  return new HttpKubeClient(connection, options.namespace ?? connection.namespace ?? 'default')
}

/** A non-2xx answer: `code` is the HTTP status and `body` the server's text, as errors.ts expects. */
export class KubeHttpError extends Error {
  constructor(readonly code: number, readonly body: string) {
    super(`HTTP ${code}`)
    this.name = 'KubeHttpError'
  }
}

interface Answer {
  readonly status: number
  readonly text: string
}

/** Where a kind lives: its path segment and whether objects sit in a namespace. */
interface ResourceInfo {
  readonly resource: string
  readonly namespaced: boolean
}

/** Kinds with no namespace, among those canary (and its tests) may name. */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Node', 'PersistentVolume'])

const JSON_TYPE = 'application/json'

/** The client (see the file comment). */
class HttpKubeClient implements KubeClient {
  readonly server: string
  private readonly base: URL
  private agent: Promise<HttpAgent> | undefined
  private agentCredentials: Credentials | undefined
  /** Discovery answers, once per process per group version, for kinds outside the table. */
  private readonly discovered = new Map<string, Promise<Map<string, ResourceInfo>>>()

  constructor(private readonly connection: KubeConnection, readonly namespace: string) {
    this.server = connection.server
    this.base = new URL(connection.server)
  }

  async read(ref: ObjectRef, signal: AbortSignal): Promise<KubeObject | undefined> {
    return this.call('get', ref, signal, async () => {
      const answer = await this.send('GET', await this.objectPath(ref), undefined, undefined, signal)
      if (answer.status === 404 && isObjectNotFound(answer.text)) return undefined
      return decode(answer)
    })
  }

  async list(apiVersion: string, kind: string, namespace: string, labelSelector: string | undefined, signal: AbortSignal): Promise<KubeObject[]> {
    return this.call('list', {apiVersion, kind, namespace}, signal, async () => {
      const query = labelSelector === undefined ? '' : `?${new URLSearchParams({labelSelector})}`
      const list = decode(await this.send('GET', `${await this.collectionPath(apiVersion, kind, namespace)}${query}`, undefined, undefined, signal)) as {items?: KubeObject[]}
      // List items carry no apiVersion/kind; put them back so objects are self-describing.
      return (list.items ?? []).map((item) => ({...item, apiVersion, kind}))
    })
  }

  create(object: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    const ref = this.refOf(object)
    return this.call('create', ref, signal, async () => decode(await this.send('POST', `${await this.collectionPath(ref.apiVersion, ref.kind, ref.namespace)}?fieldManager=${FIELD_MANAGER}`, JSON_TYPE, object, signal)))
  }

  replace(object: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    const ref = this.refOf(object)
    return this.call('update', ref, signal, async () => decode(await this.send('PUT', `${await this.objectPath(ref)}?fieldManager=${FIELD_MANAGER}`, JSON_TYPE, object, signal)))
  }

  apply(object: KubeObject, options: {readonly force: boolean}, signal: AbortSignal): Promise<KubeObject> {
    const ref = this.refOf(object)
    // JSON is YAML, so the apply body needs no YAML writer.
    return this.call('patch', ref, signal, async () => decode(await this.send('PATCH', `${await this.objectPath(ref)}?fieldManager=${FIELD_MANAGER}${options.force ? '&force=true' : ''}`, 'application/apply-patch+yaml', object, signal)))
  }

  mergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject> {
    return this.patch(ref, patch, 'application/merge-patch+json', signal)
  }

  strategicMergePatch(ref: ObjectRef, patch: Record<string, unknown>, signal: AbortSignal): Promise<KubeObject> {
    return this.patch(ref, patch, 'application/strategic-merge-patch+json', signal)
  }

  async delete(ref: ObjectRef, signal: AbortSignal): Promise<boolean> {
    return this.call('delete', ref, signal, async () => {
      const answer = await this.send('DELETE', await this.objectPath(ref), undefined, undefined, signal)
      if (answer.status === 404 && isObjectNotFound(answer.text)) return false
      decode(answer)
      return true
    })
  }

  async watch(ref: ObjectRef, resourceVersion: string | undefined, onEvent: (event: WatchEvent) => void, onEnd: (error: unknown) => void, signal: AbortSignal): Promise<void> {
    const operation = {verb: 'watch', subject: subjectOf(ref), resource: resourceOf(ref.apiVersion, ref.kind)}
    const query = new URLSearchParams({watch: 'true', fieldSelector: `metadata.name=${ref.name}`})
    if (resourceVersion !== undefined) query.set('resourceVersion', resourceVersion)
    let response: IncomingMessage
    try {
      response = await this.open('GET', `${await this.collectionPath(ref.apiVersion, ref.kind, ref.namespace)}?${query}`, undefined, undefined, signal)
      if (response.statusCode !== 200) throw new KubeHttpError(response.statusCode ?? 0, await readText(response))
    } catch (error) {
      if (signal.aborted) throw signal.reason
      throw mapKubeError(error, operation, this.server)
    }
    // Newline-delimited JSON events, for as long as the server keeps the stream open.
    let buffered = ''
    let ended = false
    const end = (error: unknown) => {
      if (ended || signal.aborted) return
      ended = true
      onEnd(error === undefined ? undefined : mapKubeError(error, operation, this.server))
    }
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      buffered += chunk
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        if (line === '') continue
        try {
          onEvent(JSON.parse(line) as WatchEvent)
        } catch (error) {
          response.destroy()
          end(error)
          return
        }
      }
    })
    response.on('end', () => end(undefined))
    response.on('error', (error) => end(error))
    signal.addEventListener('abort', () => response.destroy(), {once: true})
  }

  podProxyGet(namespace: string, pod: string, port: number, path: string, signal: AbortSignal): Promise<string> {
    const ref = {apiVersion: 'v1', kind: 'Pod', namespace, name: `${pod}:${port}`}
    const tail = path.replace(/^\//, '').split('/').map(encodeURIComponent).join('/')
    return this.call('get', ref, signal, async () => {
      const answer = await this.send('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${port}/proxy/${tail}`, undefined, undefined, signal)
      if (answer.status < 200 || answer.status > 299) throw new KubeHttpError(answer.status, answer.text)
      return answer.text
    }, 'pods/proxy')
  }

  private patch(ref: ObjectRef, patch: Record<string, unknown>, contentType: string, signal: AbortSignal): Promise<KubeObject> {
    const body = {...patch, apiVersion: ref.apiVersion, kind: ref.kind, metadata: {...(patch.metadata as object | undefined), name: ref.name, namespace: ref.namespace}}
    return this.call('patch', ref, signal, async () => decode(await this.send('PATCH', `${await this.objectPath(ref)}?fieldManager=${FIELD_MANAGER}`, contentType, body, signal)))
  }

  /** Runs one request; failures become CanaryErrors naming the verb and the object (an abort stays an abort). */
  private async call<T>(verb: string, ref: ObjectRef | {apiVersion: string; kind: string; namespace: string; name?: string}, signal: AbortSignal, run: () => Promise<T>, resource = resourceOf(ref.apiVersion, ref.kind)): Promise<T> {
    signal.throwIfAborted()
    try {
      return await run()
    } catch (error) {
      if (signal.aborted) throw signal.reason
      const subject = ref.name === undefined ? `${ref.kind}s in ${ref.namespace}` : subjectOf(ref as ObjectRef)
      throw mapKubeError(error, {verb, subject, resource}, this.server)
    }
  }

  private async objectPath(ref: ObjectRef): Promise<string> {
    return `${await this.collectionPath(ref.apiVersion, ref.kind, ref.namespace)}/${encodeURIComponent(ref.name)}`
  }

  private async collectionPath(apiVersion: string, kind: string, namespace: string): Promise<string> {
    const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
    const info = await this.resourceInfo(apiVersion, kind, root)
    return info.namespaced ? `${root}/namespaces/${encodeURIComponent(namespace)}/${info.resource}` : `${root}/${info.resource}`
  }

  private async resourceInfo(apiVersion: string, kind: string, root: string): Promise<ResourceInfo> {
    // A kind's plural is the same in every group that serves it (traefik.io and traefik.containo.us).
    const known = KIND_RESOURCES[kind]
    if (known !== undefined) return {resource: known.resource, namespaced: !CLUSTER_SCOPED.has(kind)}
    let lookup = this.discovered.get(apiVersion)
    if (lookup === undefined) {
      lookup = this.send('GET', root, undefined, undefined, AbortSignal.timeout(30_000)).then((answer) => {
        const list = decode(answer) as {resources?: Array<{name: string; kind: string; namespaced: boolean}>}
        return new Map((list.resources ?? []).filter((r) => !r.name.includes('/')).map((r) => [r.kind, {resource: r.name, namespaced: r.namespaced}]))
      })
      this.discovered.set(apiVersion, lookup)
      lookup.catch(() => this.discovered.delete(apiVersion))
    }
    const info = (await lookup).get(kind)
    if (info === undefined) throw new NotFoundError(`the API server at ${this.server} has no kind ${kind} in ${apiVersion}`, {subject: `${kind} ${apiVersion}`, suggestions: ['Is its CustomResourceDefinition installed? kubectl api-resources lists what the server serves.']})
    return info
  }

  private refOf(object: KubeObject): ObjectRef {
    return {apiVersion: object.apiVersion ?? 'v1', kind: object.kind ?? '', namespace: object.metadata?.namespace ?? this.namespace, name: object.metadata?.name ?? ''}
  }

  /** One request, whole answer as text. */
  private async send(method: string, path: string, contentType: string | undefined, body: unknown, signal: AbortSignal): Promise<Answer> {
    const response = await this.open(method, path, contentType, body, signal)
    return {status: response.statusCode ?? 0, text: await readText(response)}
  }

  /** Starts a request and resolves with the response (headers read, body still streaming). */
  private async open(method: string, path: string, contentType: string | undefined, body: unknown, signal: AbortSignal): Promise<IncomingMessage> {
    const credentials = await this.connection.credentials()
    const agent = await this.agentFor(credentials)
    const secure = this.base.protocol === 'https:'
    const {request} = secure ? await import('node:https') : await import('node:http')
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers: Record<string, string> = {accept: JSON_TYPE, 'user-agent': 'canary'}
    if (credentials.authorization !== undefined) headers.authorization = credentials.authorization
    if (payload !== undefined) {
      headers['content-type'] = contentType ?? JSON_TYPE
      headers['content-length'] = String(Buffer.byteLength(payload))
    }
    const prefix = this.base.pathname.replace(/\/+$/, '')
    return new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = request({protocol: this.base.protocol, hostname: this.base.hostname.replace(/^\[|\]$/g, ''), port: this.base.port, path: `${prefix}${path}`, method, headers, agent, signal}, resolve)
      outgoing.on('error', reject)
      outgoing.end(payload)
    })
  }

  /** One keep-alive agent per client (TLS settings are the connection's), rebuilt when an exec plugin hands out a new client certificate. */
  private agentFor(credentials: Credentials): Promise<HttpAgent> {
    if (this.agent === undefined || (credentials.cert !== this.agentCredentials?.cert)) {
      this.agentCredentials = credentials
      const tls = this.connection.tls
      this.agent = this.base.protocol === 'https:'
        ? import('node:https').then(({Agent}) => new Agent({keepAlive: true, rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca === undefined ? {} : {ca: tls.ca}), ...(tls.servername === undefined ? {} : {servername: tls.servername}), ...(credentials.cert === undefined ? {} : {cert: credentials.cert}), ...(credentials.key === undefined ? {} : {key: credentials.key})}))
        : import('node:http').then(({Agent}) => new Agent({keepAlive: true}))
    }
    return this.agent
  }
}

function readText(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    response.on('error', reject)
  })
}

/** The JSON of a 2xx answer; otherwise a KubeHttpError for errors.ts to map. */
function decode(answer: Answer): KubeObject {
  if (answer.status < 200 || answer.status > 299) throw new KubeHttpError(answer.status, answer.text)
  return JSON.parse(answer.text) as KubeObject
}

/**
 * True for "that object does not exist" (a Status naming it), false for "that kind is not served"
 * (a 404 page or a nameless Status: the CRD is not installed), which must not read as absent.
 */
function isObjectNotFound(text: string): boolean {
  try {
    const status = JSON.parse(text) as {kind?: string; reason?: string; details?: {name?: string}}
    return status.kind === 'Status' && status.reason === 'NotFound' && status.details?.name !== undefined
  } catch {
    return false
  }
}
