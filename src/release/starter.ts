/** The commented starter spec `canary init` writes; it must pass `canary validate` for every router. */
import {ROUTERS} from '../routers/index.js'
import type {RouterDefinition} from '../routers/router-definition.js'
import {ROUTER_KINDS, type RouterKind} from './release.js'
import {RELEASE_API_VERSION} from './schema.js'

/** Starter spec text for `name` and `router`. */
export function starterSpec(name: string, router: RouterKind): string {
  const definition: RouterDefinition = ROUTERS[router]
  const limits = definition.limits
  const lines = [
    `# Release spec for canary (docs/spec.md). Check it with: canary validate -f canary.yaml`,
    `apiVersion: ${RELEASE_API_VERSION}`,
    'kind: Release',
    'metadata:',
    `  name: ${name}                        # DNS-1123 label; objects are ${name} and ${name}-canary`,
    '  namespace: default',
    'spec:',
    `  image: ghcr.io/acme/${name}:v1        # the stable image; \`canary render --image v2\` names the canary`,
    '  replicas: 2',
    '  port: 8080                           # the port your app listens on',
    '  spread: false                        # true: require stable pods on different nodes',
    '  resources: { requests: { cpu: 100m, memory: 128Mi }, limits: { memory: 256Mi } }',
    '  env: { LOG_LEVEL: info }',
    '  probe: { path: /healthz }            # readiness and liveness',
    '  ingress:',
    `    host: ${name}.example.com`,
    '    path: /',
    `    router: ${router}                   # ${ROUTER_KINDS.join(' | ')}`,
    ...(definition.starterIngressLines ?? []),
    '  steps:                               # `steps: [20, 50, 100]` is shorthand for setWeight steps',
    '    - setWeight: 10',
    '    - pause: { duration: 2m }',
    '    - setWeight: 50',
    '    - pause: {}                         # wait for `canary step` / `canary promote`',
    '    - setWeight: 100',
  ]
  const header = limits.headerAlwaysNever === undefined
  const cookie = limits.cookie === undefined
  if (header || cookie) {
    lines.push('  match:                               # send matching requests to the canary whatever the weight')
    if (header) lines.push('    header: { name: X-Canary, value: always }   # X-Canary: always → canary, never → stable')
    if (cookie) lines.push('    cookie: canary                     # cookie canary=always → canary, never → stable')
  }
  if (limits.sticky === undefined) lines.push(`  sticky: { cookie: ${name}-version, maxAgeSeconds: 3600 }`)
  lines.push(
    '  analysis:                           # docs/analysis.md: canary judged against stable, evidence every second',
    '    interval: 30s                      # one look (a decision-log line with the numbers) per interval',
    '    tolerance:                         # how much worse than stable still passes (the largest allowance wins)',
    '      errorRate: { ratio: 1.5, points: 0.1, perMinute: 5 }   # canary 5xx rate ≤ 1.5 × stable\'s, or + 0.1 points, or + 5 5xx/min at full traffic',
    '      latency: { ratio: 1.5, points: 0.5, perMinute: 30 }    # share slower than stable\'s p99 bucket: ≤ 1.5 ×, or + 0.5 points, or + 30 slow/min',
    '    maxFalsePositiveRate: 0.01         # chance of rolling back a canary within the tolerance (whole rollout)',
    '    maxFalsePassRate: 0.05             # chance of passing a canary worse than the tolerance',
    '    minRequests: 100                   # canary requests at each weight before its step may pass',
    '    deadline: 30m                      # no verdict at a weight by then: inconclusive',
    '    # deadlineRequests: 50000          # ... or after this many canary requests at a weight',
    '    onInconclusive: abort              # abort (roll back) | hold (keep the weight, keep judging)',
    '    # successRate: 99                  # optional guards, judged per look for canary and stable:',
    '    # latencyP99: 500ms                #   canary alone breaks one failureLimit looks in a row → roll back; stable too → hold',
    '    failureLimit: 3',
    '',
  )
  return lines.join('\n')
}
