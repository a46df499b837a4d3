/**
 * Every rendered object is checked before it is printed: against the official schemas
 * (kubernetes-models, including the Traefik and Gateway API CRDs) and, because those schemas do
 * not check name formats, every name against DNS-1123. A failure means canary (or a user's
 * template) produced a broken object, so it is reported naming the object and the field.
 * Models are imported on first use: the CRD packages are large and most renders need three kinds.
 */
import {dns1123LabelProblem, dns1123SubdomainProblem} from '../release/dns.js'
import type {KubeObject} from './types.js'

/** One broken field of one rendered object. */
export interface ObjectProblem {
  /** `Kind namespace/name`. */
  readonly object: string
  /** Field path, e.g. `spec.replicas`. */
  readonly field: string
  /** What is wrong. */
  readonly message: string
}

type Model = new (data: never) => {validate(): void}

const MODELS: Readonly<Record<string, () => Promise<Model>>> = {
  'apps/v1/Deployment': async () => (await import('kubernetes-models/apps/v1/Deployment')).Deployment as unknown as Model,
  'v1/Service': async () => (await import('kubernetes-models/v1/Service')).Service as unknown as Model,
  'v1/ConfigMap': async () => (await import('kubernetes-models/v1/ConfigMap')).ConfigMap as unknown as Model,
  'networking.k8s.io/v1/Ingress': async () => (await import('kubernetes-models/networking.k8s.io/v1/Ingress')).Ingress as unknown as Model,
  'gateway.networking.k8s.io/v1/HTTPRoute': async () => (await import('@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute')).HTTPRoute as unknown as Model,
  'traefik.io/v1alpha1/IngressRoute': async () => (await import('@kubernetes-models/traefik/traefik.io/v1alpha1/IngressRoute')).IngressRoute as unknown as Model,
  'traefik.io/v1alpha1/TraefikService': async () => (await import('@kubernetes-models/traefik/traefik.io/v1alpha1/TraefikService')).TraefikService as unknown as Model,
  'traefik.containo.us/v1alpha1/IngressRoute': async () => (await import('@kubernetes-models/traefik/traefik.containo.us/v1alpha1/IngressRoute')).IngressRoute as unknown as Model,
  'traefik.containo.us/v1alpha1/TraefikService': async () => (await import('@kubernetes-models/traefik/traefik.containo.us/v1alpha1/TraefikService')).TraefikService as unknown as Model,
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** `Kind namespace/name` of an object, for messages. */
export function describeObject(object: KubeObject): string {
  const name = object.metadata?.name ?? '(unnamed)'
  return `${object.kind ?? '(no kind)'} ${object.metadata?.namespace === undefined ? name : `${object.metadata.namespace}/${name}`}`
}

/** Every problem of every object; empty when all are valid. */
export async function objectProblems(objects: readonly KubeObject[]): Promise<ObjectProblem[]> {
  const problems: ObjectProblem[] = []
  for (const object of objects) problems.push(...await problemsOf(object))
  return problems
}

async function problemsOf(object: KubeObject): Promise<ObjectProblem[]> {
  const subject = describeObject(object)
  const problems: ObjectProblem[] = []
  const add = (field: string, message: string): void => {
    problems.push({object: subject, field, message})
  }
  const key = `${String(object.apiVersion)}/${String(object.kind)}`
  const loadModel = MODELS[key]
  if (loadModel === undefined) {
    add('apiVersion', `no schema for ${key}: expected one of ${Object.keys(MODELS).join(', ')}`)
    return problems
  }
  const Model = await loadModel()
  try {
    new Model(object as never).validate()
  } catch (error) {
    const errors = (error as {errors?: Array<{instancePath?: string; message?: string}>}).errors
    if (errors === undefined) add('', (error as Error).message)
    for (const e of errors ?? []) add((e.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.'), e.message ?? 'invalid')
  }
  const name = object.metadata?.name
  if (typeof name !== 'string') {
    add('metadata.name', 'missing')
  } else {
    // Service names are DNS-1035 labels; other objects here accept DNS-1123 subdomains.
    const problem = object.kind === 'Service' ? dns1123LabelProblem(name) ?? (/^[a-z]/.test(name) ? undefined : 'must start with a letter') : dns1123SubdomainProblem(name)
    if (problem !== undefined) add('metadata.name', `"${name}" ${problem}`)
  }
  const namespace = object.metadata?.namespace
  if (typeof namespace === 'string') {
    const problem = dns1123LabelProblem(namespace)
    if (problem !== undefined) add('metadata.namespace', `"${namespace}" ${problem}`)
  }
  for (const [labelKey, value] of Object.entries(object.metadata?.labels ?? {})) {
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) add(`metadata.labels.${labelKey}`, `"${String(value)}" is not a valid label value`)
  }
  for (const [path, reference] of serviceReferences(object)) {
    const problem = dns1123LabelProblem(reference)
    if (problem !== undefined) add(path, `Service name "${reference}" ${problem}`)
  }
  return problems
}

/** Names of Services an object points at, with their field paths. */
function serviceReferences(object: KubeObject): Array<[string, string]> {
  const found: Array<[string, string]> = []
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((item, index) => walk(item, `${path}.${index}`))
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        const childPath = path === '' ? key : `${path}.${key}`
        const isServiceRef = (key === 'service' && object.kind === 'Ingress') || key === 'backendRef' || key === 'backendRefs'
        if (isServiceRef && value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as {name?: unknown}).name === 'string') found.push([`${childPath}.name`, (value as {name: string}).name])
        if (key === 'backendRefs' && Array.isArray(value)) value.forEach((ref, index) => typeof (ref as {name?: unknown}).name === 'string' && found.push([`${childPath}.${index}.name`, (ref as {name: string}).name]))
        walk(value, childPath)
      }
    }
  }
  walk(object.spec, 'spec')
  return found
}
