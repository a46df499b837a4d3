/**
 * The proxy's configuration file: YAML parsed once at the edge into a readonly, validated
 * `ProxyConfig`. Every problem is reported at once with file:line:col, the
 * field path and a suggestion; `${VAR}` in string values is read from the environment.
 */
import {isIP} from 'node:net'
import {dirname, resolve as resolvePath} from 'node:path'

import {z} from 'zod'

import {asRecord, configFileError, locatedProblem, schemaProblems, type IssueWording} from '../config-file/config-problems.js'
import {didYouMean} from '../config-file/did-you-mean.js'
import {CONFIG_LIMITS, preview, type ConfigLimits} from '../config-file/limits.js'
import {parseConfigYaml, yaml11BooleanHint} from '../config-file/parse-config-yaml.js'
import {readConfigFile} from '../config-file/read-config-file.js'
import {ConfigError, type ConfigProblem} from '../errors.js'
import {HOST_PORT, isLoopbackHost} from './address.js'
import {MAX_WEIGHT} from './edf-balancer.js'
import {normalisePath} from './request-target.js'
import {CertificateProblem, loadCertificate, readCaFile} from './tls.js'

export {isLoopbackHost, splitHostPort} from './address.js'

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

const name = z.string().regex(NAME, 'expected a name of letters, digits, "_", "." or "-"')
const hostPort = z.string().regex(HOST_PORT, 'expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080')
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name')
const regexSource = z.string().refine(isValidRegex, 'expected a valid regular expression')
/** Milliseconds: positive, and at most a day (Node's timers overflow above 2^31-1 ms and fire at once). */
const positiveMs = z.int().positive().max(86_400_000, 'expected at most 86400000 (one day)')
const MIB = 1024 * 1024

/** Header match shared by route matching and the canary override (ingress-nginx canary-by-header). */
const HeaderMatch = z.strictObject({
  name: headerName,
  value: z.string().optional(),
  pattern: regexSource.optional(),
})

/** Header rules: a string sets the header, `null` or `""` removes it (Traefik customRequestHeaders). */
const HeaderRules = z.record(headerName, z.string().nullable())

const Route = z.strictObject({
  name,
  host: z.string().regex(/^((\*\.)?[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/, 'expected a host name, *.example.com or [IPv6]').optional(),
  path: z.string().startsWith('/').optional(),
  pathPrefix: z.string().startsWith('/').optional(),
  method: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
  header: HeaderMatch.optional(),
  priority: z.int().optional(),
  stripPrefix: z.boolean().default(false),
  allow: z.array(z.string().refine(isCidr, 'expected an IPv4 or IPv6 CIDR, e.g. 10.0.0.0/8 or ::1/128')).min(1).optional(),
  requestHeaders: HeaderRules.optional(),
  responseHeaders: HeaderRules.optional(),
  service: name,
})

/** Verifying HTTPS upstreams: Node's CA store unless `caFile` is given; SNI is the URL's host unless `serverName`. */
const UpstreamTls = z.strictObject({
  caFile: z.string().min(1).optional(),
  serverName: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'expected a DNS name').optional(),
})

/** TLS termination on `listen` (docs/proxy.md "TLS"); the first certificate is the default. */
const Tls = z.strictObject({
  certificates: z.array(z.strictObject({certFile: z.string().min(1), keyFile: z.string().min(1)})).min(1),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  http2: z.boolean().default(true),
  redirect: z.strictObject({listen: hostPort, httpsPort: z.int().min(1).max(65_535).optional()}).optional(),
})

const Version = z.strictObject({
  name,
  weight: z.number().nonnegative().max(MAX_WEIGHT).optional(),
  servers: z.array(z.url({protocol: /^https?$/, error: 'expected an http:// or https:// URL'})).min(1),
})

const Service = z.strictObject({
  versions: z.array(Version).min(1),
  canary: name.optional(),
  header: HeaderMatch.optional(),
  cookie: z.strictObject({name: z.string().min(1)}).optional(),
  upstreamTls: UpstreamTls.optional(),
  sticky: z
    .strictObject({
      cookie: z.string().min(1),
      httpOnly: z.boolean().default(true),
      secure: z.boolean().default(false),
      sameSite: z.enum(['Strict', 'Lax', 'None']).default('Lax'),
      maxAgeSeconds: z.int().nonnegative().optional(),
      path: z.string().startsWith('/').default('/'),
      // first: ingress-nginx (affinity before the canary header/cookie); afterOverrides: Traefik.
      precedence: z.enum(['first', 'afterOverrides']).default('first'),
    })
    .optional(),
  mirror: z
    .strictObject({
      version: name,
      percent: z.number().min(0).max(100),
      maxBodyBytes: z.int().nonnegative().default(64 * 1024),
      timeoutMs: positiveMs.default(5000),
    })
    .optional(),
  healthCheck: z
    .strictObject({
      path: z.string().startsWith('/'),
      intervalMs: positiveMs.default(5000),
      timeoutMs: positiveMs.default(2000),
    })
    .optional(),
})

const RawConfig = z.strictObject({
  listen: hostPort,
  admin: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:9901'),
      token: z.string().optional(),
      metricsAuth: z.boolean().default(true),
    })
    .default({listen: '127.0.0.1:9901', metricsAuth: true}),
  accessLog: z.strictObject({path: z.string().min(1), maxBufferBytes: z.int().min(64 * 1024).max(1024 * MIB).default(4 * MIB)}).optional(),
  tls: Tls.optional(),
  trustedProxyHops: z.int().nonnegative().default(0),
  timeouts: z
    .strictObject({
      connectMs: positiveMs.default(2000),
      responseHeadersMs: positiveMs.default(30_000),
      responseBodyMs: positiveMs.default(30_000),
      clientHeadersMs: positiveMs.default(10_000),
      clientIdleMs: positiveMs.default(5000),
      clientBodyMs: positiveMs.default(30_000),
      clientSendMs: positiveMs.default(30_000),
      upstreamQueueMs: positiveMs.default(5000),
      drainMs: positiveMs.default(10_000),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxHeaderBytes: z.int().min(1024).max(MIB).default(16 * 1024),
      upstreamConnections: z.int().positive().max(65_536).default(128),
      upstreamQueue: z.int().nonnegative().max(1_000_000).default(1024),
      requestBufferBytes: z.int().nonnegative().max(64 * MIB).default(64 * 1024),
      responseBufferBytes: z.int().nonnegative().max(64 * MIB).default(256 * 1024),
      bufferTotalBytes: z.int().nonnegative().max(16 * 1024 * MIB).default(64 * MIB),
    })
    .prefault({}),
  health: z.strictObject({cooldownMs: positiveMs.default(10_000)}).prefault({}),
  routes: z.array(Route).min(1),
  services: z.record(name, Service),
})

type Raw = z.infer<typeof RawConfig>

type DeepReadonly<T> = T extends (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? {readonly [K in keyof T]: DeepReadonly<T[K]>} : T

/** One version of a service as the proxy runs it: its weight is always resolved. */
export type ProxyVersionConfig = DeepReadonly<Omit<Raw['services'][string]['versions'][number], 'weight'> & {weight: number}>
/** One service: versions with resolved weights, plus override, sticky, mirror and health settings. */
export type ProxyServiceConfig = DeepReadonly<Omit<Raw['services'][string], 'versions'> & {versions: ProxyVersionConfig[]}>
/** One route: match conditions, middlewares and the service it sends to. */
export type ProxyRouteConfig = DeepReadonly<Raw['routes'][number]>
/** A validated proxy configuration (plain data: safe to send to cluster workers). */
export type ProxyConfig = DeepReadonly<Omit<Raw, 'services'> & {services: Record<string, ProxyServiceConfig>; file: string}>

/** Total weight assumed when one version omits its weight and takes the remainder (Traefik 1.x). */
export const REMAINDER_TOTAL = 100

/**
 * Reads and parses a proxy config file. Throws ConfigError. Only a regular file of at most 1 MiB
 * of UTF-8 is read (docs/spec.md "Limits and YAML dialect"), so a reload cannot hang on a FIFO.
 */
export async function loadProxyConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ProxyConfig> {
  const suggestion = 'Check the --config path.'
  const text = await readConfigFile(file, {
    label: 'proxy config',
    suggestion,
    missing: (missing, cause) => new ConfigError(`proxy config ${missing}: read failed: not found`, [{location: {file: missing}, path: '', message: 'not found', suggestion}], {cause, subject: missing, suggestions: [suggestion]}),
  })
  return parseProxyConfig(text, file, env)
}

export interface ParseProxyConfigOptions {
  /** Defaults to CONFIG_LIMITS (benchmarks lift the size limit to measure growth past it). */
  readonly limits?: Partial<ConfigLimits>
}

/** Parses proxy config YAML text; `file` is used in error locations. Throws ConfigError listing every problem. */
export function parseProxyConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, options: ParseProxyConfigOptions = {}): ProxyConfig {
  // `${VAR}` → value from env; `$$` writes a literal `$`. Missing variables are reported, not replaced.
  const unset: Array<{offset: number | undefined; variable: string}> = []
  const expand = (value: string, offset: number | undefined): string => {
    if (!value.includes('$')) return value
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, variable: string | undefined) => {
      if (variable === undefined) return '$'
      const found = env[variable]
      if (found !== undefined) return found
      unset.push({offset, variable})
      return whole
    })
  }
  const yaml = parseConfigYaml(text, file, {limits: options.limits, mapString: expand})
  if (yaml.problems.length > 0) throw configError(file, yaml.problems)
  const problems: ConfigProblem[] = unset.map(({offset, variable}) => ({location: yaml.at(offset), path: '', message: `environment variable ${variable} is not set`, suggestion: `Export ${variable} or write the value in the file ($$ writes a literal $).`}))

  const data: unknown = yaml.value
  const report: Report = (path, message, suggestion) => problems.push(locatedProblem(yaml.locate(path), path, {message, suggestion}))
  // References are checked even when the schema fails, so one run lists every problem.
  checkReferences(data, report)
  const parsed = RawConfig.safeParse(data, {reportInput: true})
  if (!parsed.success) {
    problems.push(...schemaProblems(parsed.error.issues, RawConfig, yaml, PROXY_WORDING))
    throw configError(file, problems)
  }

  const config = resolve(parsed.data, file, report)
  if (problems.length > 0) throw configError(file, problems)
  return config
}

type Report = (path: string[], message: string, suggestion?: string) => void

/** The proxy config's words: a short message, and a suggestion that says what to write. */
const PROXY_WORDING: IssueWording = {
  unknownKey: (_key, known, guess) => ({message: 'unknown field', suggestion: guess === undefined ? `Known fields here: ${known.join(', ')}.` : `Did you mean "${guess}"?`}),
  issue: (issue, input) => {
    const yaml11 = issue.code === 'invalid_type' ? yaml11BooleanHint(issue.expected, input) : undefined
    return {message: issue.message, suggestion: yaml11 === undefined ? suggestionFor(issue.path.map(String)) : `${yaml11}.`}
  },
}

/** Cross-field checks and weight resolution; the schema alone cannot see these. */
function resolve(raw: Raw, file: string, report: Report): ProxyConfig {
  const services: Record<string, ProxyServiceConfig> = {}
  for (const [serviceName, service] of Object.entries(raw.services)) {
    const base = ['services', serviceName]
    const names = new Set<string>()
    service.versions.forEach(({name: n}, i) => {
      if (names.has(n)) report([...base, 'versions', String(i), 'name'], `duplicate version name "${preview(n)}"`, 'Give every version of a service its own name.')
      names.add(n)
    })
    if ((service.header !== undefined || service.cookie !== undefined) && service.canary === undefined) {
      report([...base, service.header === undefined ? 'cookie' : 'header'], 'header and cookie overrides need `canary:` to name the version they select', 'Add `canary: <version>` to the service.')
    }
    if (service.canary !== undefined && service.versions.length < 2) report([...base, 'canary'], 'a canary needs at least two versions (stable and canary)', 'Add the stable version or remove `canary:`.')
    if (service.header !== undefined && service.header.value !== undefined && service.header.pattern !== undefined) {
      report([...base, 'header'], 'set `value` or `pattern`, not both', 'Keep one of them.')
    }

    const omitted = service.versions.map((v, i) => (v.weight === undefined ? i : -1)).filter((i) => i >= 0)
    const given = service.versions.reduce((sum, v) => sum + (v.weight ?? 0), 0)
    if (omitted.length > 1) {
      report([...base, 'versions', String(omitted[1])], 'only one version may omit its weight (it takes the remainder of 100)', 'Give every version but one a weight.')
    } else if (omitted.length === 1 && given > REMAINDER_TOTAL) {
      report([...base, 'versions', String(omitted[0])], `the other versions' weights add up to ${given}, leaving no remainder of ${REMAINDER_TOTAL} for this one`, 'Lower the other weights or give this version a weight.')
    } else if (omitted.length === 0 && given <= 0) {
      report([...base, 'versions'], 'all weights are 0', 'Give at least one version a positive weight.')
    }
    const upstreamTls = service.upstreamTls === undefined ? undefined : resolveUpstreamTls(service.upstreamTls, service.versions, file, [...base, 'upstreamTls'], report)
    services[serviceName] = {
      ...service,
      ...(upstreamTls === undefined ? {} : {upstreamTls}),
      versions: service.versions.map((v) => ({...v, weight: v.weight ?? Math.max(0, REMAINDER_TOTAL - given)})),
    }
  }

  const routeNames = new Set<string>()
  raw.routes.forEach((route, i) => {
    const base = ['routes', String(i)]
    if (routeNames.has(route.name)) report([...base, 'name'], `duplicate route name "${preview(route.name)}"`, 'Give every route its own name.')
    routeNames.add(route.name)
    if (route.path !== undefined && route.pathPrefix !== undefined) report([...base, 'pathPrefix'], 'set `path` or `pathPrefix`, not both', 'Keep one of them.')
    if (route.stripPrefix && route.pathPrefix === undefined) report([...base, 'stripPrefix'], '`stripPrefix` needs `pathPrefix`', 'Add `pathPrefix:` or remove `stripPrefix`.')
    if (route.path !== undefined) {
      const problem = pathPatternProblem(route.path)
      if (problem !== undefined) report([...base, 'path'], problem, 'Write parameters as {name} or {name:regex}.')
    }
    // Requests are routed on normalised paths (request-target.ts), so a route must be written in that form to ever match.
    for (const field of ['path', 'pathPrefix'] as const) {
      const value = route[field]
      if (value === undefined) continue
      const problem = routePathFormProblem(value)
      if (problem !== undefined) report([...base, field], problem.message, problem.suggestion)
    }
    if (route.header !== undefined && route.header.value !== undefined && route.header.pattern !== undefined) report([...base, 'header'], 'set `value` or `pattern`, not both', 'Keep one of them.')
  })

  const adminHost = HOST_PORT.exec(raw.admin.listen)?.[1] ?? ''
  if (!isLoopbackHost(adminHost) && (raw.admin.token === undefined || raw.admin.token === '')) {
    report(['admin', 'token'], `admin listens on ${raw.admin.listen}, which is not loopback, and has no token`, 'Set admin.token (e.g. token: ${CANARY_ADMIN_TOKEN}) or listen on 127.0.0.1.')
  }
  const tls = raw.tls === undefined ? undefined : resolveTls(raw.tls, raw.listen, file, report)
  return {...raw, ...(tls === undefined ? {} : {tls}), services, file}
}

/** Paths relative to the config file's directory, as nginx resolves them against its prefix. */
function relativeToConfig(file: string, path: string): string {
  return resolvePath(dirname(resolvePath(file)), path)
}

/** Absolute certificate paths; every pair is read and checked now, so a bad one is a located problem. */
function resolveTls(tls: NonNullable<Raw['tls']>, listen: string, file: string, report: Report): NonNullable<Raw['tls']> {
  const certificates = tls.certificates.map((pair, i) => {
    const absolute = {certFile: relativeToConfig(file, pair.certFile), keyFile: relativeToConfig(file, pair.keyFile)}
    try {
      loadCertificate(absolute)
    } catch (error) {
      if (!(error instanceof CertificateProblem)) throw error
      report(['tls', 'certificates', String(i), error.field], error.message, error.suggestion)
    }
    return absolute
  })
  if (tls.redirect !== undefined && tls.redirect.listen === listen && !listen.endsWith(':0')) report(['tls', 'redirect', 'listen'], `the redirect listener cannot share the TLS listener's address ${listen}`, 'Give the plain-HTTP redirect its own port, e.g. 127.0.0.1:8080.')
  return {...tls, certificates}
}

function resolveUpstreamTls(upstreamTls: NonNullable<Raw['services'][string]['upstreamTls']>, versions: Raw['services'][string]['versions'], file: string, path: string[], report: Report): NonNullable<Raw['services'][string]['upstreamTls']> {
  if (!versions.some((v) => v.servers.some((s) => s.startsWith('https:')))) report(path, 'upstreamTls is set but no server of this service is an https:// URL', 'Write the servers as https://host:port, or remove upstreamTls.')
  if (upstreamTls.caFile === undefined) return upstreamTls
  const caFile = relativeToConfig(file, upstreamTls.caFile)
  try {
    readCaFile(caFile)
  } catch (error) {
    report([...path, 'caFile'], (error as Error).message, 'Point caFile at a PEM bundle of the CA certificates that issued the upstream servers\' certificates.')
  }
  return {...upstreamTls, caFile}
}

/** Route → service and canary/mirror → version references, on unvalidated data (shapes may be wrong). */
function checkReferences(data: unknown, report: Report): void {
  const root = asRecord(data)
  const services = asRecord(root?.services) ?? {}
  const serviceNames = Object.keys(services)
  const serviceSet = new Set(serviceNames)
  // Suggestions cost an edit distance per candidate: only the problems that will be listed get one.
  let suggested = 0
  const suggest = (name: string, known: readonly string[], otherwise: string): string => {
    const close = suggested++ < CONFIG_LIMITS.maxProblems ? didYouMean(name, known) : undefined
    return close === undefined ? otherwise : `Did you mean "${close}"?`
  }
  const listed = (names: readonly string[]) => (names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} … (${names.length} in all)`)
  const routes = Array.isArray(root?.routes) ? (root.routes as unknown[]) : []
  routes.forEach((route, i) => {
    const service = asRecord(route)?.service
    if (typeof service !== 'string' || serviceSet.has(service)) return
    report(['routes', String(i), 'service'], `service "${preview(service)}" is not defined under services`, suggest(service, serviceNames, `Define it under services: or use one of: ${listed(serviceNames)}.`))
  })
  for (const [serviceName, value] of Object.entries(services)) {
    const service = asRecord(value)
    const versions = Array.isArray(service?.versions) ? (service.versions as unknown[]) : []
    const names = versions.map((v) => asRecord(v)?.name).filter((n): n is string => typeof n === 'string')
    const refersTo = (field: string[], version: unknown) => {
      if (typeof version !== 'string' || names.includes(version)) return
      report(['services', serviceName, ...field], `version "${preview(version)}" is not a version of service ${preview(serviceName)}`, suggest(version, names, `Use one of: ${listed(names)}.`))
    }
    refersTo(['canary'], service?.canary)
    refersTo(['mirror', 'version'], asRecord(service?.mirror)?.version)
  }
}

/** A route path (pattern parameters aside) that normalisation would change, or refuses, can never match a request. */
function routePathFormProblem(path: string): {message: string; suggestion: string} | undefined {
  // Pattern parameters ({name}, {name:regex}) are regex syntax, not path characters.
  const literal = path.replace(/\{[^}]*\}/g, 'p')
  const normalised = normalisePath(literal)
  if (!normalised.ok) return {message: `path ${path} can never match: requests with it are refused (${normalised.reason})`, suggestion: 'See docs/proxy.md "Request targets" for the path rules.'}
  if (normalised.path !== literal) return {message: `path ${path} is not in normalised form, so no request matches it`, suggestion: `Write ${path.includes('{') ? 'it' : normalised.path} without dot segments, "//", escapes of letters, digits and -._~, or lowercase hex.`}
  return undefined
}

/** Validates a route path pattern such as `/cheddar/{name}/{id:[0-9]+}`; returns the problem or undefined. */
export function pathPatternProblem(path: string): string | undefined {
  let depth = 0
  for (const ch of path) {
    if (ch === '{') depth++
    else if (ch === '}') depth--
    if (depth < 0 || depth > 1) return 'unbalanced braces in path pattern'
  }
  if (depth !== 0) return 'unbalanced braces in path pattern'
  for (const match of path.matchAll(/\{([^}:]*)(?::([^}]*))?\}/g)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(match[1] ?? '')) return `parameter name "${match[1] ?? ''}" must be an identifier`
    if (match[2] !== undefined && !isValidRegex(match[2])) return `parameter ${match[1] ?? ''}: invalid regular expression "${match[2]}"`
  }
  return undefined
}

function configError(file: string, problems: readonly ConfigProblem[]): ConfigError {
  return configFileError('proxy config', file, problems, 'Fix every problem listed, then start or reload the proxy again (docs/proxy.md has the full format).')
}

function suggestionFor(path: readonly string[]): string | undefined {
  const last = path[path.length - 1]
  if (last === 'servers' || path.includes('servers')) return 'List upstream URLs such as http://127.0.0.1:9001.'
  if (last === 'listen') return 'Write host:port, e.g. 127.0.0.1:8080.'
  if (last === 'weight') return 'Use a non-negative number; weights are relative to their total.'
  if (last === 'allow' || path.includes('allow')) return 'Write CIDRs such as 10.0.0.0/8 or ::1/128.'
  return 'See docs/proxy.md for the field.'
}

function isValidRegex(source: string): boolean {
  try {
    new RegExp(source)
    return true
  } catch {
    return false
  }
}

function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/')
  if (rest.length > 0 || address === undefined) return false
  const family = isIP(address)
  if (family === 0) return false
  if (prefix === undefined) return true
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}
