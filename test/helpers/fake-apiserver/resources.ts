/**
 * The resource table the fake API server serves: what `kubectl api-resources` would list for the
 * kinds canary touches, plus the official schema each object is validated against (422 otherwise).
 */
import {Deployment} from 'kubernetes-models/apps/v1/Deployment'
import {ConfigMap} from 'kubernetes-models/v1/ConfigMap'
import {Pod} from 'kubernetes-models/v1/Pod'
import {Secret} from 'kubernetes-models/v1/Secret'
import {Service} from 'kubernetes-models/v1/Service'
import {ServiceAccount} from 'kubernetes-models/v1/ServiceAccount'
import {Ingress} from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import {Role} from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role'
import {RoleBinding} from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding'
import {TraefikService} from '@kubernetes-models/traefik/traefik.io/v1alpha1/TraefikService'
import {IngressRoute} from '@kubernetes-models/traefik/traefik.io/v1alpha1/IngressRoute'
import {TraefikService as ContainousTraefikService} from '@kubernetes-models/traefik/traefik.containo.us/v1alpha1/TraefikService'
import {IngressRoute as ContainousIngressRoute} from '@kubernetes-models/traefik/traefik.containo.us/v1alpha1/IngressRoute'
import {HTTPRoute} from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute'

/** A plain JSON Kubernetes object as stored by the fake. */
export type KubeObject = Record<string, unknown> & {
  apiVersion?: string
  kind?: string
  metadata?: Record<string, unknown> & {name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>}
}

/** One served resource type. */
export interface ResourceType {
  readonly group: string
  readonly version: string
  readonly resource: string
  readonly kind: string
  readonly namespaced: boolean
  /** Has a `/status` subresource: writes to the main resource ignore `.status`. */
  readonly statusSubresource: boolean
  /** Custom resources do not support strategic merge patch (the real server answers 415). */
  readonly custom: boolean
  /** Names must be DNS-1035 labels (Services) rather than DNS-1123 subdomains. */
  readonly nameRule: 'subdomain' | 'label1035'
  validate(object: KubeObject): void
}

type ModelClass = new (data: never) => {validate(): void}

function row(group: string, version: string, resource: string, kind: string, model: ModelClass, options: {statusSubresource?: boolean; custom?: boolean; nameRule?: 'subdomain' | 'label1035'; namespaced?: boolean} = {}): ResourceType {
  return {
    group, version, resource, kind,
    namespaced: options.namespaced ?? true,
    statusSubresource: options.statusSubresource ?? false,
    custom: options.custom ?? false,
    nameRule: options.nameRule ?? 'subdomain',
    validate: (object) => new model(structuredClone(object) as never).validate(),
  }
}

export const RESOURCE_TYPES: readonly ResourceType[] = [
  row('', 'v1', 'configmaps', 'ConfigMap', ConfigMap as unknown as ModelClass),
  row('', 'v1', 'services', 'Service', Service as unknown as ModelClass, {statusSubresource: true, nameRule: 'label1035'}),
  row('', 'v1', 'pods', 'Pod', Pod as unknown as ModelClass, {statusSubresource: true}),
  row('', 'v1', 'secrets', 'Secret', Secret as unknown as ModelClass),
  row('', 'v1', 'serviceaccounts', 'ServiceAccount', ServiceAccount as unknown as ModelClass),
  row('apps', 'v1', 'deployments', 'Deployment', Deployment as unknown as ModelClass, {statusSubresource: true}),
  row('networking.k8s.io', 'v1', 'ingresses', 'Ingress', Ingress as unknown as ModelClass, {statusSubresource: true}),
  row('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', Role as unknown as ModelClass),
  row('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', RoleBinding as unknown as ModelClass),
  row('traefik.io', 'v1alpha1', 'traefikservices', 'TraefikService', TraefikService as unknown as ModelClass, {custom: true}),
  row('traefik.io', 'v1alpha1', 'ingressroutes', 'IngressRoute', IngressRoute as unknown as ModelClass, {custom: true}),
  row('traefik.containo.us', 'v1alpha1', 'traefikservices', 'TraefikService', ContainousTraefikService as unknown as ModelClass, {custom: true}),
  row('traefik.containo.us', 'v1alpha1', 'ingressroutes', 'IngressRoute', ContainousIngressRoute as unknown as ModelClass, {custom: true}),
  row('gateway.networking.k8s.io', 'v1', 'httproutes', 'HTTPRoute', HTTPRoute as unknown as ModelClass, {custom: true, statusSubresource: true}),
]

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`
}

/** `deployments.apps` / `configmaps`: how the real server names a resource in messages. */
export function qualifiedResource(type: ResourceType): string {
  return type.group === '' ? type.resource : `${type.resource}.${type.group}`
}

export function findType(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.group === group && t.version === version && t.resource === resource)
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/

/** The name check apimachinery runs (ValidateObjectMeta); null when the name is fine. */
export function nameProblem(type: ResourceType, name: string): string | null {
  if (type.nameRule === 'label1035') {
    if (name.length > 63) return 'must be no more than 63 characters'
    if (!DNS1035_LABEL.test(name)) return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    return null
  }
  if (name.length > 253) return 'must be no more than 253 characters'
  if (!DNS1123_SUBDOMAIN.test(name)) return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
  return null
}
