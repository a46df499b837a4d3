/**
 * Every object name canary derives from a release, in one place. `apex` is the user-facing
 * route; `stable`/`canary` are the two tracks. The spec limits the release name so each of these
 * stays a 63-character DNS-1123 label (schema.ts MAX_RELEASE_NAME_LENGTH).
 */
import type {Release} from '../release/release.js'

/** Names of the objects of one release. */
export interface ReleaseNames {
  /** The user-facing route object (Ingress, IngressRoute, HTTPRoute, TraefikService). */
  readonly apex: string
  /** Stable Deployment and Service. */
  readonly stable: string
  /** Canary Deployment and Service. */
  readonly canary: string
  /** ingress-nginx canary Ingress. */
  readonly canaryIngress: string
  /** Inner weighted TraefikService when a mirroring TraefikService wraps it. */
  readonly weighted: string
  /** Bundled proxy Deployment and Service. */
  readonly proxy: string
  /** ConfigMap of the bundled proxy's config. */
  readonly proxyConfig: string
  /** Secret holding the in-cluster proxy's admin API token (created by canary at start, never rendered). */
  readonly proxyAdminSecret: string
  /** ConfigMap of Traefik's file-provider dynamic configuration. */
  readonly traefikFileConfig: string
  /** Prefix of routers and services inside Traefik's file-provider config (unique per namespace). */
  readonly traefikFilePrefix: string
}

/** Object names for `release`. */
export function names(release: Pick<Release, 'name' | 'namespace'>): ReleaseNames {
  const name = release.name
  return {
    apex: name,
    stable: name,
    canary: `${name}-canary`,
    canaryIngress: `${name}-canary`,
    weighted: `${name}-weighted`,
    proxy: `${name}-proxy`,
    proxyConfig: `${name}-proxy-config`,
    proxyAdminSecret: `${name}-proxy-admin`,
    traefikFileConfig: `${name}-traefik`,
    traefikFilePrefix: `${release.namespace}-${name}`,
  }
}

/** Labels on every object canary renders; `canary.dev/release` marks ownership (routers refuse objects without it). */
export function releaseLabels(release: Pick<Release, 'name'>): Record<string, string> {
  return {'app.kubernetes.io/managed-by': 'canary', 'canary.dev/release': release.name}
}

/** In-cluster URL of a Service port. */
export function serviceUrl(service: string, namespace: string, port: number): string {
  return `http://${service}.${namespace}.svc.cluster.local:${port}`
}

/** The release's ingress section; routers are only called for releases that have one. */
export function requireIngress(release: Release): NonNullable<Release['ingress']> {
  if (release.ingress === undefined) throw new Error(`release ${release.namespace}/${release.name} has no spec.ingress to render routing objects from`)
  return release.ingress
}
