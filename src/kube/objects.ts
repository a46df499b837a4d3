/**
 * Plain Kubernetes objects as canary reads and writes them, the labels that mark what canary owns,
 * and the one "does the live object already say what we want" comparison behind
 * "write only on change".
 */

/** A Kubernetes object as plain JSON (no client-node classes, no Dates). */
export interface KubeObject {
  apiVersion?: string
  kind?: string
  metadata?: KubeMetadata
  [field: string]: unknown
}

/** The metadata fields canary reads or sets. */
export interface KubeMetadata {
  name?: string
  namespace?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  resourceVersion?: string
  generation?: number
  uid?: string
  [field: string]: unknown
}

/** Names one object. */
export interface ObjectRef {
  readonly apiVersion: string
  readonly kind: string
  readonly namespace: string
  readonly name: string
}

/** Marks every object canary creates (the recommended label, kubernetes.io/docs/concepts/overview/working-with-objects/common-labels). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const MANAGED_BY_VALUE = 'canary'
/** The release an object belongs to, so two releases never adopt each other's objects. */
export const RELEASE_LABEL = 'canary.dev/release'
/** The field manager of every write (server-side apply and patches). */
export const FIELD_MANAGER = 'canary'

/** `Ingress shop/web-canary`: how messages name an object. */
export function subjectOf(ref: ObjectRef | KubeObject): string {
  if ('name' in ref && typeof ref.name === 'string' && 'namespace' in ref) return `${ref.kind} ${String(ref.namespace)}/${ref.name}`
  const object = ref as KubeObject
  return `${object.kind ?? 'object'} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`
}

export function refOf(object: KubeObject, namespace: string): ObjectRef {
  return {apiVersion: object.apiVersion ?? 'v1', kind: object.kind ?? '', namespace: object.metadata?.namespace ?? namespace, name: object.metadata?.name ?? ''}
}

/** True when the object carries canary's managed-by label (and, if given, belongs to this release). */
export function isManagedByCanary(object: KubeObject, release?: string): boolean {
  const labels = object.metadata?.labels ?? {}
  return labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && (release === undefined || labels[RELEASE_LABEL] === undefined || labels[RELEASE_LABEL] === release)
}

/**
 * The kinds canary touches: resource name and group as RBAC and error messages spell them, and
 * as the client puts them in URLs (so it needs no discovery for them).
 */
export const KIND_RESOURCES: Readonly<Record<string, {readonly resource: string; readonly group: string}>> = {
  ConfigMap: {resource: 'configmaps', group: ''},
  Secret: {resource: 'secrets', group: ''},
  Namespace: {resource: 'namespaces', group: ''},
  Service: {resource: 'services', group: ''},
  Pod: {resource: 'pods', group: ''},
  ServiceAccount: {resource: 'serviceaccounts', group: ''},
  Deployment: {resource: 'deployments', group: 'apps'},
  Ingress: {resource: 'ingresses', group: 'networking.k8s.io'},
  TraefikService: {resource: 'traefikservices', group: 'traefik.io'},
  IngressRoute: {resource: 'ingressroutes', group: 'traefik.io'},
  HTTPRoute: {resource: 'httproutes', group: 'gateway.networking.k8s.io'},
  Role: {resource: 'roles', group: 'rbac.authorization.k8s.io'},
  RoleBinding: {resource: 'rolebindings', group: 'rbac.authorization.k8s.io'},
}

/** `ingresses.networking.k8s.io` / `configmaps`, from an apiVersion and kind. */
export function resourceOf(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : ''
  const resource = KIND_RESOURCES[kind]?.resource ?? `${kind.toLowerCase()}s`
  return group === '' ? resource : `${resource}.${group}`
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * True when every field the desired object sets has the same value in the live one. Fields the
 * server adds (defaults, status, uid) are ignored, so a re-apply of an unchanged spec is skipped.
 * Lists must match item by item (a desired list is the whole list).
 */
export function containsDesired(live: unknown, desired: unknown): boolean {
  if (isPlainObject(desired)) {
    if (!isPlainObject(live)) return false
    return Object.entries(desired).every(([key, value]) => value === undefined || containsDesired(live[key], value))
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false
    return desired.every((item, index) => containsDesired(live[index], item))
  }
  return live === desired
}
