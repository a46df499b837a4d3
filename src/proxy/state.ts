/**
 * The live state the admin API reports (`GET /api/state`) and the per-service view returned after
 * a weight change. Plain JSON so cluster workers can send it to the primary, which merges it.
 */
import type {ProxyConfig} from './config.js'
import type {ProxyRuntime, ServiceRuntime} from './runtime.js'
import type {CertificateState} from './tls.js'

/** One upstream server's health. */
export interface ServerState {
  url: string
  healthy: boolean
}

/** One version of a service. */
export interface VersionState {
  name: string
  weight: number
  /** The weight the balancer uses: 0 while the version has no healthy server (its share goes to the others). */
  effectiveWeight: number
  healthy: boolean
  servers: ServerState[]
}

/** One service: weights are relative to `total`; `canary` and `stable` name versions (null when unset). */
export interface ServiceState {
  total: number
  canary: string | null
  stable: string | null
  versions: VersionState[]
}

/** One route as configured. */
export interface RouteState {
  name: string
  service: string
  host?: string
  path?: string
  pathPrefix?: string
  priority?: number
}

/** `GET /api/state`. */
export interface ProxyState {
  generation: number
  startedAt: string
  pid: number
  workers: number
  config: string
  listen: string
  admin: string
  reloads: {success: number; failure: number}
  routes: RouteState[]
  services: Record<string, ServiceState>
  /** The certificates new TLS handshakes get (only with `tls:`); the first is the default. */
  tls?: {certificates: CertificateState[]; redirect?: string}
}

export function serviceState(service: ServiceRuntime): ServiceState {
  return {
    total: service.totalWeight,
    canary: service.canary?.name ?? null,
    stable: service.stable?.name ?? null,
    versions: service.versions.map((v) => {
      const healthy = v.healthy
      return {name: v.name, weight: v.weight, effectiveWeight: healthy ? v.weight : 0, healthy, servers: v.servers.map((s) => ({url: s.url, healthy: s.healthy}))}
    }),
  }
}

export function servicesState(runtime: ProxyRuntime): Record<string, ServiceState> {
  return Object.fromEntries([...runtime.services].map(([name, service]) => [name, serviceState(service)]))
}

export function routesState(config: ProxyConfig): RouteState[] {
  return config.routes.map((r) => ({
    name: r.name,
    service: r.service,
    ...(r.host === undefined ? {} : {host: r.host}),
    ...(r.path === undefined ? {} : {path: r.path}),
    ...(r.pathPrefix === undefined ? {} : {pathPrefix: r.pathPrefix}),
    ...(r.priority === undefined ? {} : {priority: r.priority}),
  }))
}

/** Merges per-worker service states: a server or version is healthy only if it is healthy in every worker. */
export function mergeServices(parts: readonly Record<string, ServiceState>[]): Record<string, ServiceState> {
  const [first, ...rest] = parts
  if (first === undefined) return {}
  const merged: Record<string, ServiceState> = structuredClone(first)
  for (const part of rest) {
    for (const [name, service] of Object.entries(part)) {
      const into = merged[name]
      if (into === undefined) continue
      service.versions.forEach((version, i) => {
        const target = into.versions[i]
        if (target === undefined || target.name !== version.name) return
        target.healthy &&= version.healthy
        target.effectiveWeight = target.healthy ? target.weight : 0
        version.servers.forEach((server, j) => {
          const s = target.servers[j]
          if (s !== undefined) s.healthy &&= server.healthy
        })
      })
    }
  }
  return merged
}
