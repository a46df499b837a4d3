/**
 * The shape of the release spec as written in YAML, checked field by field with zod. Checks that
 * span fields (weights against the total, router capabilities) live in `release-rules.ts`;
 * normalization into `Release` in `normalise-release.ts`.
 */
import {z} from 'zod'

import {dns1123LabelProblem, dns1123SubdomainProblem} from './dns.js'
import {parseDurationMs} from './duration.js'
import {imageRefProblem} from './image-ref.js'
import {ROUTER_KINDS, TARGET_KINDS, TRAEFIK_API_GROUPS} from './release.js'

/** The only apiVersion this version of canary reads. */
export const RELEASE_API_VERSION = 'canary.dev/v1alpha1'

/** RFC 9110 token without the backtick (Traefik rules quote with backticks): header names. */
const TOKEN = /^[!#$%&'*+\-.^_|~0-9A-Za-z]+$/
const HOST_PORT = /^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/

const duration = z.string({error: 'expected a duration such as 30s, 2m or 400ms'}).refine((text) => parseDurationMs(text) !== undefined, {
  error: (issue) => `expected a duration such as 30s, 2m, 1h30m or 400ms, got "${String(issue.input)}"`,
})
const label = z.string().superRefine((name, ctx) => {
  const problem = dns1123LabelProblem(name)
  if (problem !== undefined) ctx.addIssue({code: 'custom', message: `"${name}" is not a valid DNS-1123 label: ${problem}`})
})
/** Longest suffix canary appends to the release name (`-proxy-config`), so every derived name stays a 63-char label. */
export const MAX_RELEASE_NAME_LENGTH = 63 - '-proxy-config'.length
const releaseName = label.superRefine((name, ctx) => {
  if (name.length > MAX_RELEASE_NAME_LENGTH) ctx.addIssue({code: 'custom', message: `"${name}" is too long: expected at most ${MAX_RELEASE_NAME_LENGTH} characters, so that derived names like ${name}-canary stay within 63`})
  // Services are named after the release, and Service names are DNS-1035 labels (start with a letter).
  else if (/^[0-9]/.test(name)) ctx.addIssue({code: 'custom', message: `"${name}" must start with a letter: Services are named after the release and Service names are DNS-1035 labels`})
})
const token = (what: string) => z.string().regex(TOKEN, {error: `expected a ${what} (letters, digits and !#$%&'*+-.^_|~, no spaces)`})
/** Cookie names: a conservative subset of RFC 6265 tokens that needs no quoting in any router. */
const cookieName = z.string().regex(/^[A-Za-z0-9_.-]+$/, {error: 'expected a cookie name of letters, digits, "_", "." or "-"'})
const hostPort = z.string().regex(HOST_PORT, {error: 'expected host:port, e.g. 127.0.0.1:8080'})
const percent = z.number().min(0, {error: 'expected a percentage from 0 to 100'}).max(100, {error: 'expected a percentage from 0 to 100'})
/** How much worse than stable the canary may be: `ratio` × stable's rate, stable's rate + `points` percentage points, or + `perMinute` events per minute at full traffic, whichever is largest. */
const tolerance = z.strictObject({
  ratio: z.number({error: 'expected a ratio such as 1.5 (canary at most 1.5 × stable)'}).min(1, {error: 'expected a ratio of at least 1: below 1 even a canary exactly like stable would fail'}).max(1000, {error: 'expected a ratio of at most 1000'}).optional(),
  points: z.number({error: 'expected percentage points such as 0.1'}).min(0, {error: 'expected percentage points from 0 to 100'}).max(100, {error: 'expected percentage points from 0 to 100'}).optional(),
  perMinute: z.number({error: 'expected extra events per minute at full traffic, such as 6'}).min(0, {error: 'expected events per minute from 0 to 1000000'}).max(1_000_000, {error: 'expected events per minute from 0 to 1000000'}).optional(),
})
const quantityMap = z.record(z.string(), z.union([z.string(), z.number()]).transform(String))

const headerMatch = z.strictObject({
  name: token('header name').optional(),
  value: z.string().optional(),
  pattern: z.string().optional(),
})

const steps = z.array(z.unknown(), {error: 'expected a list of steps, e.g. [20, 50, 100] or [{setWeight: 20}, {pause: {duration: 2m}}]'}).min(1, {error: 'expected at least one step'})

/** `spec:` of a Release. */
export const ReleaseSpecSchema = z.strictObject({
  image: z.string({error: 'expected the stable image reference, e.g. ghcr.io/acme/my-app:v1'}).superRefine((ref, ctx) => {
    const problem = imageRefProblem(ref)
    if (problem !== undefined) ctx.addIssue({code: 'custom', message: `image reference "${ref}" ${problem}`})
  }),
  replicas: z.int({error: 'expected a whole number of replicas'}).min(0).max(1000).optional(),
  port: z.int({error: 'expected a port number'}).min(1, {error: 'expected a port from 1 to 65535'}).max(65535, {error: 'expected a port from 1 to 65535'}),
  spread: z.boolean().optional(),
  resources: z.strictObject({requests: quantityMap.optional(), limits: quantityMap.optional()}).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, {error: 'expected an environment variable name'}), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  probe: z.strictObject({
    path: z.string().startsWith('/', {error: 'expected a path starting with /'}),
    port: z.int().min(1).max(65535).optional(),
    periodSeconds: z.int().min(1).optional(),
    initialDelaySeconds: z.int().min(0).optional(),
  }).optional(),
  ingress: z.strictObject({
    host: z.string().superRefine((host, ctx) => {
      const problem = dns1123SubdomainProblem(host)
      if (problem !== undefined) ctx.addIssue({code: 'custom', message: `host "${host}" is not a valid DNS name: ${problem}`})
    }),
    path: z.string().startsWith('/', {error: 'expected a path starting with /'}).regex(/^[^\s`'"{}\\]*$/, {error: 'expected a path without spaces, quotes, backticks, braces or backslashes'}).optional(),
    router: z.enum(ROUTER_KINDS).optional(),
    className: label.optional(),
    traefikApiGroup: z.enum(TRAEFIK_API_GROUPS).optional(),
    gateway: z.strictObject({name: label, namespace: label.optional(), sectionName: z.string().min(1).optional()}).optional(),
    tls: z.strictObject({secretName: label}).optional(),
  }).optional(),
  steps,
  totalWeight: z.int({error: 'expected a whole number such as 100 or 1000'}).min(1).max(1_000_000, {error: 'expected at most 1000000 (the Gateway API weight limit)'}).optional(),
  match: z.strictObject({
    header: headerMatch.optional(),
    cookie: z.union([cookieName, z.strictObject({name: cookieName})]).optional(),
  }).optional(),
  sticky: z.strictObject({cookie: cookieName, maxAgeSeconds: z.int().min(1).optional()}).optional(),
  mirror: z.strictObject({percent: z.int({error: 'expected a whole percentage from 1 to 100'}).min(1, {error: 'expected a whole percentage from 1 to 100'}).max(100, {error: 'expected a whole percentage from 1 to 100'})}).optional(),
  analysis: z.strictObject({
    interval: duration.optional(),
    minRequests: z.int().min(1).optional(),
    successRate: percent.optional(),
    latencyP99: duration.optional(),
    failureLimit: z.int().min(0).optional(),
    progressDeadline: duration.optional(),
    deadline: duration.optional(),
    deadlineRequests: z.int({error: 'expected a whole number of canary requests, e.g. 20000'}).min(1, {error: 'expected at least 1 canary request'}).optional(),
    onInconclusive: z.enum(['abort', 'hold']).optional(),
    tolerance: z.strictObject({errorRate: tolerance.optional(), latency: tolerance.optional()}).optional(),
    maxFalsePositiveRate: z.number().gt(0, {error: 'expected a rate between 0 and 1, e.g. 0.01'}).lt(1, {error: 'expected a rate between 0 and 1, e.g. 0.01'}).optional(),
    maxFalsePassRate: z.number().gt(0, {error: 'expected a rate between 0 and 1, e.g. 0.05'}).lt(1, {error: 'expected a rate between 0 and 1, e.g. 0.05'}).optional(),
    prometheus: z.strictObject({
      url: z.url({error: 'expected the Prometheus base URL, e.g. http://prometheus.monitoring:9090'}),
      queries: z.strictObject({successRate: z.string().optional(), latencyP99: z.string().optional(), requests: z.string().optional()}).optional(),
    }).optional(),
  }).optional(),
  target: z.enum(TARGET_KINDS).optional(),
  local: z.strictObject({
    command: z.string().min(1).optional(),
    upstreams: z.record(z.string().min(1), z.array(z.url({error: 'expected a server URL, e.g. http://127.0.0.1:9001'})).min(1)).optional(),
    listen: hostPort.optional(),
    adminListen: hostPort.optional(),
    readyTimeout: duration.optional(),
  }).optional(),
  proxy: z.strictObject({
    image: z.string().superRefine((ref, ctx) => {
      const problem = imageRefProblem(ref)
      if (problem !== undefined) ctx.addIssue({code: 'custom', message: `image reference "${ref}" ${problem}`})
    }).optional(),
    replicas: z.int().min(1).optional(),
  }).optional(),
})

/** A whole Release document. */
export const ReleaseDocumentSchema = z.strictObject({
  apiVersion: z.literal(RELEASE_API_VERSION),
  kind: z.literal('Release'),
  metadata: z.strictObject({name: releaseName, namespace: label.optional()}),
  spec: ReleaseSpecSchema,
})

/** The YAML document after the shape check. */
export type ReleaseDocument = z.infer<typeof ReleaseDocumentSchema>
