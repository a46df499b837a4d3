/** Releases for the Kubernetes tests, parsed by the real spec loader (src/release). */
import {parseRelease} from '../../src/release/load-release.js'
import type {Release} from '../../src/release/release.js'
import type {FakeApiServer} from '../helpers/fake-apiserver/index.js'

/** Optional parts of a test release. */
export interface FixtureOptions {
  readonly router?: string
  readonly totalWeight?: number
  readonly match?: boolean
  readonly mirror?: boolean
  readonly traefikApiGroup?: string
  readonly extra?: string
  readonly prometheusUrl?: string
  /** Leave spec.analysis.prometheus out even for routers that need it. */
  readonly noPrometheus?: boolean
  readonly prometheusQueries?: string
}

/** A release `web` in namespace `shop` routed by `router`. */
export function testRelease(given: FixtureOptions = {}): Release {
  // Routers other than the proxy are judged from Prometheus; tests that never read metrics get an address nobody listens on.
  const needsPrometheus = (given.router ?? 'nginx') !== 'proxy' && given.noPrometheus !== true
  const placeholder = given.prometheusUrl === undefined && needsPrometheus
  const userQueriesNeeded = given.router === 'traefik-v1' || given.router === 'gateway-api'
  const options = {
    ...given,
    prometheusUrl: placeholder ? 'http://127.0.0.1:9' : given.prometheusUrl,
    prometheusQueries: given.prometheusQueries ?? (placeholder && userQueriesNeeded ? `{requests: 'sum(requests)', successRate: 'sum(success)'}` : undefined),
  }
  const lines = [
    'apiVersion: canary.dev/v1alpha1',
    'kind: Release',
    'metadata: {name: web, namespace: shop}',
    'spec:',
    '  image: ghcr.io/acme/web:v1',
    '  port: 8080',
    '  replicas: 2',
    `  ingress: {host: web.example.com, router: ${options.router ?? 'nginx'}${options.traefikApiGroup === undefined ? '' : `, traefikApiGroup: ${options.traefikApiGroup}`}${options.router === 'gateway-api' ? ', gateway: {name: public}' : ''}}`,
    `  steps: [10, 50, ${options.totalWeight ?? 100}]`,
    ...(options.totalWeight === undefined ? [] : [`  totalWeight: ${options.totalWeight}`]),
    ...(options.match === true ? ['  match: {header: {name: X-Canary}}'] : []),
    ...(options.mirror === true ? ['  mirror: {percent: 10}'] : []),
    '  target: kubernetes',
    // A loose judge: these tests are about routers and objects, and their traffic is a few seconds long.
    `  analysis: {interval: 1s, progressDeadline: 30s, maxFalsePassRate: 0.5, tolerance: {errorRate: {points: 20}, latency: {points: 50}}${options.prometheusUrl === undefined ? '' : `, prometheus: {url: '${options.prometheusUrl}'${options.prometheusQueries === undefined ? '' : `, queries: ${options.prometheusQueries}`}}`}}`,
    ...(options.extra === undefined ? [] : [options.extra]),
    '',
  ]
  return parseRelease(lines.join('\n'), 'release.yaml').release
}

/** What `canary render --rbac | kubectl apply` leaves for router proxy: ServiceAccount `web-proxy` in `shop`, which its pods run as. */
export function seedProxyServiceAccount(fake: FakeApiServer): void {
  fake.seed({apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: 'web-proxy', namespace: 'shop'}})
}
