/**
 * Kubeconfig resolution as kubectl does it (k8s.io/client-go/tools/clientcmd): `--kubeconfig`, then
 * every file of `KUBECONFIG` (merged: the first file to define a name or the current context wins),
 * then `~/.kube/config`, then the pod's service account. Credentials: bearer token or token file,
 * client certificate, basic auth, and exec credential plugins (client.authentication.k8s.io, how
 * EKS, GKE and AKS clusters authenticate). Relative paths are relative to the file that names them.
 *
 * Why not @kubernetes/client-node: importing it costs ~400 ms of every cluster command, more than
 * the rest of a `canary step` together (bench/cluster.ts).
 */
import {execFile} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {delimiter, dirname, isAbsolute, join} from 'node:path'

import {ConfigError} from '../errors.js'

/** Where the API server is and how to prove who we are. */
export interface KubeConnection {
  readonly server: string
  /** The context's namespace, or undefined. */
  readonly namespace: string | undefined
  readonly tls: {readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer; readonly rejectUnauthorized: boolean; readonly servername?: string}
  /** The current credentials (an exec plugin runs on first use, again when they expire). */
  readonly credentials: () => Promise<Credentials>
}

/** What goes with each request. */
export interface Credentials {
  readonly authorization?: string
  readonly cert?: Buffer
  readonly key?: Buffer
}

/** kubectl's connection flags, as far as the kubeconfig is concerned. */
export interface KubeconfigOptions {
  readonly kubeconfig?: string
  readonly context?: string
}

interface Named<T> {
  readonly name: string
  readonly value: T
}

interface ClusterEntry {
  server?: string
  'certificate-authority'?: string
  'certificate-authority-data'?: string
  'insecure-skip-tls-verify'?: boolean
  'tls-server-name'?: string
  'proxy-url'?: string
}

interface ExecConfig {
  command?: string
  args?: string[]
  env?: Array<{name: string; value: string}> | null
  apiVersion?: string
}

interface UserEntry {
  token?: string
  tokenFile?: string
  'client-certificate'?: string
  'client-certificate-data'?: string
  'client-key'?: string
  'client-key-data'?: string
  username?: string
  password?: string
  exec?: ExecConfig
  'auth-provider'?: {name?: string; config?: Record<string, string>}
}

interface ContextEntry {
  cluster?: string
  user?: string
  namespace?: string
}

/** One loaded kubeconfig file (or several merged), with the directory each entry's relative paths start from. */
interface Merged {
  clusters: Map<string, {entry: ClusterEntry; dir: string}>
  users: Map<string, {entry: UserEntry; dir: string}>
  contexts: Map<string, ContextEntry>
  currentContext: string | undefined
  files: string[]
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** Resolves the kubeconfig the way kubectl does and returns the connection of the chosen context. */
export async function loadKubeconfig(options: KubeconfigOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<KubeConnection> {
  const explicit = options.kubeconfig
  const subject = explicit ?? env.KUBECONFIG ?? '~/.kube/config'
  let files: string[]
  if (explicit !== undefined) files = [explicit]
  else if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') files = env.KUBECONFIG.split(delimiter).filter((f) => f !== '' && existsSync(f))
  else files = [join(env.HOME ?? homedir(), '.kube', 'config')].filter((f) => existsSync(f))
  if (files.length === 0) {
    if (options.context === undefined) {
      const inCluster = inClusterConnection(env)
      if (inCluster !== undefined) return inCluster
    }
    throw new ConfigError('no kubeconfig found: KUBECONFIG is unset or empty, ~/.kube/config does not exist, and this is not a pod with a service account', [], {
      subject: 'kubeconfig',
      suggestions: ['Pass --kubeconfig PATH or set KUBECONFIG.', 'For a rollout on this machine without a cluster, add a spec.local section (docs/rollout.md).'],
    })
  }
  const merged = await mergeFiles(files, explicit)
  const contextName = options.context ?? merged.currentContext
  if (contextName === undefined || contextName === '') {
    throw new ConfigError('no Kubernetes cluster configured: the kubeconfig has no current context', [], {
      subject,
      suggestions: ['Pass --kubeconfig PATH and --context NAME, set KUBECONFIG, or run `kubectl config use-context NAME`.'],
    })
  }
  const context = merged.contexts.get(contextName)
  if (context === undefined) {
    const names = [...merged.contexts.keys()]
    throw new ConfigError(`kubeconfig has no context "${contextName}"`, [], {
      subject,
      suggestions: [names.length === 0 ? 'The kubeconfig defines no contexts.' : `Known contexts: ${names.join(', ')}.`],
    })
  }
  const cluster = context.cluster === undefined ? undefined : merged.clusters.get(context.cluster)
  if (cluster?.entry.server === undefined || cluster.entry.server === '') {
    throw new ConfigError(`kubeconfig context "${contextName}": cluster "${context.cluster ?? ''}" is not defined or has no server`, [], {subject, suggestions: ['Check the context\'s cluster with `kubectl config view`.']})
  }
  const user = context.user === undefined ? undefined : merged.users.get(context.user)
  const where = `kubeconfig ${merged.files.join(delimiter)}`
  if (cluster.entry['proxy-url'] !== undefined) {
    throw unsupported(where, `cluster "${context.cluster ?? ''}" sets proxy-url`, 'Reach the API server directly (e.g. through an SSH tunnel or `kubectl proxy`), or remove proxy-url.')
  }
  const tls = {
    ...readPem(cluster.entry['certificate-authority-data'], cluster.entry['certificate-authority'], cluster.dir, 'ca', where),
    rejectUnauthorized: cluster.entry['insecure-skip-tls-verify'] !== true,
    ...(cluster.entry['tls-server-name'] === undefined ? {} : {servername: cluster.entry['tls-server-name']}),
  }
  return {
    server: cluster.entry.server.replace(/\/+$/, ''),
    namespace: context.namespace === '' ? undefined : context.namespace,
    tls,
    credentials: credentialsOf(user?.entry ?? {}, user?.dir ?? '', where, context.user ?? ''),
  }
}

function unsupported(where: string, what: string, fix: string): ConfigError {
  return new ConfigError(`${where}: ${what}, which canary does not support`, [], {subject: where, suggestions: [fix]})
}

/** Reads and merges the files, first definition wins (clientcmd's merge rules). */
async function mergeFiles(files: readonly string[], explicit: string | undefined): Promise<Merged> {
  const merged: Merged = {clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: undefined, files: [...files]}
  const {parse} = await import('yaml')
  for (const file of files) {
    let document: unknown
    try {
      document = parse(readFileSync(file, 'utf8'))
    } catch (error) {
      throw new ConfigError(`cannot load kubeconfig ${file}: ${(error as Error).message}`, [], {
        cause: error, subject: explicit ?? file,
        suggestions: ['Pass --kubeconfig PATH, set KUBECONFIG, or run inside a pod with a service account.'],
      })
    }
    const config = (document ?? {}) as {clusters?: unknown; users?: unknown; contexts?: unknown; 'current-context'?: unknown}
    const dir = dirname(file)
    for (const {name, value} of namedList<ClusterEntry>(config.clusters, 'cluster')) if (!merged.clusters.has(name)) merged.clusters.set(name, {entry: value, dir})
    for (const {name, value} of namedList<UserEntry>(config.users, 'user')) if (!merged.users.has(name)) merged.users.set(name, {entry: value, dir})
    for (const {name, value} of namedList<ContextEntry>(config.contexts, 'context')) if (!merged.contexts.has(name)) merged.contexts.set(name, value)
    if (merged.currentContext === undefined && typeof config['current-context'] === 'string' && config['current-context'] !== '') merged.currentContext = config['current-context']
  }
  return merged
}

function namedList<T>(list: unknown, key: string): Named<T>[] {
  if (!Array.isArray(list)) return []
  return list.flatMap((item: unknown) => {
    const entry = item as Record<string, unknown> | null
    return typeof entry?.name === 'string' && typeof entry[key] === 'object' && entry[key] !== null ? [{name: entry.name, value: entry[key] as T}] : []
  })
}

function resolvePath(path: string, dir: string): string {
  return isAbsolute(path) ? path : join(dir, path)
}

/** `*-data` (base64) or a file; undefined when neither is set. */
function readPem(data: string | undefined, file: string | undefined, dir: string, key: 'ca' | 'cert' | 'key', where: string): Partial<Record<'ca' | 'cert' | 'key', Buffer>> {
  if (data !== undefined && data !== '') return {[key]: Buffer.from(data, 'base64')}
  if (file === undefined || file === '') return {}
  const path = resolvePath(file, dir)
  try {
    return {[key]: readFileSync(path)}
  } catch (error) {
    throw new ConfigError(`${where}: cannot read ${path}: ${(error as Error).message}`, [], {cause: error, subject: path, suggestions: ['Fix the path in the kubeconfig, or use the *-data field instead.']})
  }
}

function credentialsOf(user: UserEntry, dir: string, where: string, userName: string): () => Promise<Credentials> {
  const tls = {...readPem(user['client-certificate-data'], user['client-certificate'], dir, 'cert', where), ...readPem(user['client-key-data'], user['client-key'], dir, 'key', where)}
  if (user.token !== undefined && user.token !== '') {
    const fixed: Credentials = {...tls, authorization: `Bearer ${user.token}`}
    return async () => fixed
  }
  if (user.tokenFile !== undefined && user.tokenFile !== '') {
    // Re-read on every connection: projected service-account tokens rotate (client-go does the same).
    const path = resolvePath(user.tokenFile, dir)
    return async () => ({...tls, authorization: `Bearer ${readFileSync(path, 'utf8').trim()}`})
  }
  if (user.username !== undefined && user.password !== undefined) {
    const fixed: Credentials = {...tls, authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`}
    return async () => fixed
  }
  if (user.exec?.command !== undefined) return execCredentials(user.exec, dir, where, userName, tls)
  const provider = user['auth-provider']
  if (provider !== undefined) {
    // kubectl dropped the gcp and azure providers (1.26); oidc's current id-token is usable as it is.
    const token = provider.name === 'oidc' ? provider.config?.['id-token'] : undefined
    if (token === undefined || token === '') throw unsupported(where, `user "${userName}" uses auth-provider ${provider.name ?? ''}`, 'Use an exec credential plugin instead (e.g. kubelogin, gke-gcloud-auth-plugin, `aws eks get-token`).')
    const fixed: Credentials = {...tls, authorization: `Bearer ${token}`}
    return async () => fixed
  }
  const fixed: Credentials = tls
  return async () => fixed
}

/** Runs an exec credential plugin (ExecCredential, client.authentication.k8s.io) and keeps its answer until it expires. */
function execCredentials(exec: ExecConfig, dir: string, where: string, userName: string, tls: Credentials): () => Promise<Credentials> {
  let cached: {credentials: Credentials; expiresAtMs: number} | undefined
  return async () => {
    if (cached !== undefined && Date.now() < cached.expiresAtMs) return cached.credentials
    const command = exec.command ?? ''
    // A command with a slash is relative to the kubeconfig, like kubectl; a bare name is looked up on PATH.
    const file = command.includes('/') ? resolvePath(command, dir) : command
    const apiVersion = exec.apiVersion ?? 'client.authentication.k8s.io/v1'
    const env = {...process.env, ...Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])), KUBERNETES_EXEC_INFO: JSON.stringify({apiVersion, kind: 'ExecCredential', spec: {interactive: false}})}
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(file, exec.args ?? [], {env, timeout: 60_000, maxBuffer: 1024 * 1024}, (error, out, stderr) => {
        if (error === null) resolve(out)
        else reject(new ConfigError(`${where}: user "${userName}": credential plugin ${command} failed: ${(stderr.trim() || error.message).split('\n')[0] ?? ''}`, [], {cause: error, subject: where, suggestions: [`Run \`${[command, ...(exec.args ?? [])].join(' ')}\` yourself to see why.`]}))
      })
    })
    let status: {token?: string; clientCertificateData?: string; clientKeyData?: string; expirationTimestamp?: string} | undefined
    try {
      status = (JSON.parse(stdout) as {status?: typeof status}).status
    } catch {
      status = undefined
    }
    if (status === undefined || (status.token === undefined && status.clientCertificateData === undefined)) {
      throw new ConfigError(`${where}: user "${userName}": credential plugin ${command} printed no ExecCredential with a token or client certificate`, [], {subject: where})
    }
    const credentials: Credentials = status.token === undefined
      ? {cert: Buffer.from(status.clientCertificateData ?? ''), key: Buffer.from(status.clientKeyData ?? '')}
      : {...tls, authorization: `Bearer ${status.token}`}
    const expiresAtMs = status.expirationTimestamp === undefined ? Number.POSITIVE_INFINITY : Date.parse(status.expirationTimestamp) - 10_000
    cached = {credentials, expiresAtMs}
    return credentials
  }
}

/** The pod's service account (rest.InClusterConfig), or undefined outside a pod. */
function inClusterConnection(env: NodeJS.ProcessEnv): KubeConnection | undefined {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  const tokenFile = join(SERVICE_ACCOUNT_DIR, 'token')
  if (host === undefined || host === '' || port === undefined || port === '' || !existsSync(tokenFile)) return undefined
  const namespaceFile = join(SERVICE_ACCOUNT_DIR, 'namespace')
  const caFile = join(SERVICE_ACCOUNT_DIR, 'ca.crt')
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    namespace: existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined,
    tls: {...(existsSync(caFile) ? {ca: readFileSync(caFile)} : {}), rejectUnauthorized: true},
    credentials: async () => ({authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`}),
  }
}
