/**
 * Every router kind, and the one place a new one is registered: `ROUTERS` is a
 * `Record<RouterKind, …>`, so a kind added to ROUTER_KINDS (src/release/release.ts) fails the
 * build until its definition is listed here. Each definition (router-definition.ts) holds
 * everything about its router; the callers (validation, render, RBAC, the Kubernetes adapters,
 * the Prometheus source) look a router up here and never switch on its name.
 */
import type {Release, RouterKind} from '../release/release.js'
import {GATEWAY_API} from './gateway-api/index.js'
import {NGINX} from './nginx/index.js'
import {PROXY} from './proxy/index.js'
import type {RouterDefinition} from './router-definition.js'
import {TRAEFIK_FILE} from './traefik-file/index.js'
import {TRAEFIK_V1} from './traefik-v1/index.js'
import {TRAEFIK} from './traefik/index.js'

/** One definition per router kind, each under its own name. */
export type RouterTable = {readonly [K in RouterKind]: RouterDefinition & {readonly kind: K}}

/** Router definitions by `spec.ingress.router`. */
export const ROUTERS = {
  nginx: NGINX,
  traefik: TRAEFIK,
  'traefik-v1': TRAEFIK_V1,
  'traefik-file': TRAEFIK_FILE,
  'gateway-api': GATEWAY_API,
  proxy: PROXY,
} as const satisfies RouterTable

/** The router of a release: `spec.ingress.router`, or the bundled proxy when the spec has no ingress (local). */
export function routerOf(release: Pick<Release, 'ingress'>): RouterKind {
  return release.ingress?.router ?? 'proxy'
}

/** The definition of the release's router. */
export function routerDefinition(release: Pick<Release, 'ingress'>): RouterDefinition {
  return ROUTERS[routerOf(release)]
}
