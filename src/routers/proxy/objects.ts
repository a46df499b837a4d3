/**
 * canary's bundled proxy: its own config (the format of issue #3, parsed by src/proxy/config.ts)
 * and, for a cluster, the ConfigMap, Deployment and Service that run it in front of the stable and
 * canary Services. Version names are the track names, `stable` and `canary`.
 */
import {createHash} from 'node:crypto'

import {stringify} from 'yaml'

import {stableWeight, type Weights} from '../../rollout/core/weights.js'
import type {Release} from '../../release/release.js'
import {names, releaseLabels, serviceUrl} from '../../render/names.js'
import {bundledTemplates} from '../../render/template-set.js'
import {fillTemplate} from '../../render/template.js'
import type {BuildOptions, KubeObject, RenderState} from '../../render/types.js'

/** Where the proxy listens inside its pod, and its admin API (on the pod IP too, for the pod proxy). */
export const PROXY_POD_LISTEN = {port: 8080, adminPort: 9901} as const
/** File name of the proxy config inside its ConfigMap. */
export const PROXY_CONFIG_FILE = 'proxy.yaml'
/** Environment variable the in-cluster proxy reads its admin token from (`${CANARY_ADMIN_TOKEN}` in its config). */
export const PROXY_ADMIN_TOKEN_ENV = 'CANARY_ADMIN_TOKEN'
/** Key of the token in the admin Secret. */
export const PROXY_ADMIN_SECRET_KEY = 'token'

/** Inputs of `buildProxyConfig` beyond the release. */
export interface ProxyConfigInput {
  /** Stable server URLs. */
  readonly stableServers: readonly string[]
  /** Canary server URLs; no canary version (and no overrides or mirror) when absent or empty. */
  readonly canaryServers?: readonly string[]
  /** Current split. */
  readonly weights: Weights
  /** Proxy listen address; `spec.local.listen` or 127.0.0.1:8080 when absent. */
  readonly listen?: string
  /** Admin API listen address; `spec.local.adminListen` or 127.0.0.1:9901 when absent. */
  readonly adminListen?: string
  /** Admin token, usually `${CANARY_ADMIN_TOKEN}` so the proxy reads it from its environment. */
  readonly adminToken?: string
  /** False: `/metrics` answers without the token (the proxy's default is true). */
  readonly metricsAuth?: boolean
  /** Access log path (`-` for stdout). */
  readonly accessLogPath?: string
}

/**
 * The proxy expands `${VAR}` in every string of its config (src/proxy/config.ts), and `$$` is a
 * literal `$`. Strings that come from the spec are written with `$` doubled, so a header value or
 * pattern (`^v2$`, `${HOME}`) reaches the proxy exactly as written and can never read its environment.
 */
export function proxyLiteral(text: string): string {
  return text.replace(/\$/g, () => '$$')
}

/** The bundled proxy's config object for one release; only `adminToken` may use `${VAR}`. */
export function buildProxyConfig(release: Release, input: ProxyConfigInput): Record<string, unknown> {
  const hasCanary = input.canaryServers !== undefined && input.canaryServers.length > 0
  const header = release.match?.header
  const service: Record<string, unknown> = {
    versions: [
      {name: 'stable', weight: hasCanary ? stableWeight(input.weights) : input.weights.total, servers: input.stableServers.map(proxyLiteral)},
      ...(hasCanary ? [{name: 'canary', weight: input.weights.canary, servers: (input.canaryServers ?? []).map(proxyLiteral)}] : []),
    ],
  }
  if (hasCanary) {
    service.canary = 'canary'
    if (header !== undefined) service.header = header.kind === 'exact' ? {name: header.name, value: proxyLiteral(header.value)} : header.kind === 'pattern' ? {name: header.name, pattern: proxyLiteral(header.pattern)} : {name: header.name}
    if (release.match?.cookie !== undefined) service.cookie = {name: release.match.cookie.name}
    if (release.mirror !== undefined) service.mirror = {version: 'canary', percent: release.mirror.percent}
  }
  if (release.sticky !== undefined) service.sticky = {cookie: release.sticky.cookie, ...(release.sticky.maxAgeSeconds === undefined ? {} : {maxAgeSeconds: release.sticky.maxAgeSeconds})}
  if (release.probe !== undefined) service.healthCheck = {path: proxyLiteral(release.probe.path)}
  return {
    listen: input.listen ?? release.local?.listen ?? '127.0.0.1:8080',
    admin: {
      listen: input.adminListen ?? release.local?.adminListen ?? '127.0.0.1:9901',
      ...(input.adminToken === undefined ? {} : {token: input.adminToken}),
      ...(input.metricsAuth === undefined ? {} : {metricsAuth: input.metricsAuth}),
    },
    ...(input.accessLogPath === undefined ? {} : {accessLog: {path: input.accessLogPath}}),
    routes: [{
      name: release.name,
      ...(release.ingress === undefined ? {} : {host: release.ingress.host}),
      pathPrefix: proxyLiteral(release.ingress?.path ?? '/'),
      service: release.name,
    }],
    services: {[release.name]: service},
  }
}

/**
 * ConfigMap, Deployment and Service running the proxy in a cluster, routing to the track Services.
 * The pods run as ServiceAccount `<release>-proxy` (from `canary render --rbac`) and read their
 * admin token from Secret `<release>-proxy-admin` (created at start: render output stays
 * deterministic and never contains a secret). The admin API listens on the pod IP with that
 * token, and `/metrics` is open so canary can scrape it through the API server's pod proxy.
 */
export function buildProxy(release: Release, state: RenderState, options: BuildOptions = {}): KubeObject[] {
  const templates = options.templates ?? bundledTemplates()
  const n = names(release)
  const config = buildProxyConfig(release, {
    stableServers: [serviceUrl(n.stable, release.namespace, release.port)],
    ...(state.canaryImage === undefined ? {} : {canaryServers: [serviceUrl(n.canary, release.namespace, release.port)]}),
    weights: state.weights,
    listen: `0.0.0.0:${PROXY_POD_LISTEN.port}`,
    adminListen: `0.0.0.0:${PROXY_POD_LISTEN.adminPort}`,
    adminToken: `\${${PROXY_ADMIN_TOKEN_ENV}}`,
    metricsAuth: false,
    accessLogPath: '-',
  })
  const text = stringify(config, {lineWidth: 0, aliasDuplicateObjects: false})
  const labels = {...releaseLabels(release), app: n.proxy}
  const common = {namespace: release.namespace, release: release.name, labels}
  return [
    fillTemplate(templates['config-map'], {...common, name: n.proxyConfig, data: {[PROXY_CONFIG_FILE]: text}}),
    fillTemplate(templates['proxy-deployment'], {
      ...common,
      name: n.proxy,
      selector: {app: n.proxy},
      replicas: release.proxy.replicas,
      image: release.proxy.image,
      configMap: n.proxyConfig,
      configFile: PROXY_CONFIG_FILE,
      port: PROXY_POD_LISTEN.port,
      adminPort: PROXY_POD_LISTEN.adminPort,
      checksum: createHash('sha256').update(text).digest('hex').slice(0, 16),
      serviceAccount: n.proxy,
      adminSecret: n.proxyAdminSecret,
      adminSecretKey: PROXY_ADMIN_SECRET_KEY,
      adminTokenEnv: PROXY_ADMIN_TOKEN_ENV,
    }),
    fillTemplate(templates['proxy-service'], {...common, name: n.proxy, selector: {app: n.proxy}, port: PROXY_POD_LISTEN.port}),
  ] as unknown as KubeObject[]
}

/**
 * The Secret with the in-cluster proxy's admin token. Never part of render output (the token is
 * random); the Kubernetes proxy router creates it at start when it does not exist.
 */
export function buildProxyAdminSecret(release: Release, token: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {name: names(release).proxyAdminSecret, namespace: release.namespace, labels: {...releaseLabels(release), app: names(release).proxy}},
    type: 'Opaque',
    data: {[PROXY_ADMIN_SECRET_KEY]: Buffer.from(token, 'utf8').toString('base64')},
  }
}
