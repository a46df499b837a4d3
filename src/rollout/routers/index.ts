/**
 * Traffic routers by kind: an exhaustive map, never a silent default (Flagger falls back to Istio
 * with a warning; we refuse). The local target always uses the bundled proxy (`proxy`).
 */
import {ConfigError} from '../../errors.js'
import {didYouMean} from '../../spec/did-you-mean.js'
import {ROUTER_KINDS, type Release, type RouterKind} from '../../spec/release.js'
import type {TrafficRouter} from '../ports.js'

/** The bundled proxy's admin API, when the router is the local proxy. */
export interface ProxyAdminEndpoint {
  readonly url: string
  readonly token: string
}

/** What a router factory gets. */
export interface RouterInput {
  readonly release: Release
  readonly proxyAdmin?: ProxyAdminEndpoint
}

/** Builds one router. */
export type RouterFactory = (input: RouterInput) => Promise<TrafficRouter>

const notYet = (kind: RouterKind): RouterFactory => async () => {
  throw new ConfigError(`router ${kind}: not available in this build yet (#5)`, [], {suggestions: ['Run the release locally (spec `local:`), which uses the bundled proxy.']})
}

/** Every router kind the spec can name, and how to build it. */
export const ROUTER_FACTORIES = {
  proxy: async (input) => {
    if (input.proxyAdmin === undefined) throw new ConfigError('router proxy: no admin endpoint for the bundled proxy', [], {suggestions: ['Run the release locally (spec `local:`).']})
    return new (await import('../../local/proxy-router.js')).ProxyRouter(input.release, input.proxyAdmin)
  },
  nginx: notYet('nginx'),
  traefik: notYet('traefik'),
  'traefik-v1': notYet('traefik-v1'),
  'traefik-file': notYet('traefik-file'),
  'gateway-api': notYet('gateway-api'),
} satisfies Record<RouterKind, RouterFactory>

/** The router of `kind`; an unknown kind is a ConfigError naming the known ones. */
export function routerFor(kind: string, input: RouterInput): Promise<TrafficRouter> {
  const factory = (ROUTER_FACTORIES as Record<string, RouterFactory | undefined>)[kind]
  if (factory === undefined) {
    const guess = didYouMean(kind, ROUTER_KINDS)
    throw new ConfigError(`router ${kind}: unknown kind`, [], {suggestions: [`Use one of: ${ROUTER_KINDS.join(', ')}.${guess === undefined ? '' : ` Did you mean ${guess}?`}`]})
  }
  return factory(input)
}
