/**
 * Traefik v2/v3 with its CRDs (`spec.ingress.router: traefik`): an IngressRoute to a weighted
 * TraefikService (objects.ts), driven on a cluster by kube-router.ts, judged with Traefik's
 * per-service Prometheus metrics.
 */
import type {RouterKind} from '../../release/release.js'
import {counterAndHistogramQueries, escapeLabel, escapeRegex, type RouterDefinition, type RouterProblem} from '../router-definition.js'
import {TraefikCrdRouter} from './kube-router.js'
import {buildTraefikCrd} from './objects.js'

export const TRAEFIK = {
  kind: 'traefik',
  limits: {},
  starterIngressLines: ['    traefikApiGroup: traefik.io         # traefik.containo.us for Traefik v2'],
  validate: ({headerTexts}) => traefikQuotingProblems('traefik', headerTexts),
  build: buildTraefikCrd,
  rbac: {
    rules: (release) => [
      // The mirroring wrapper's inner TraefikService is deleted when the rollout ends.
      {apiGroups: [release.ingress?.traefikApiGroup ?? 'traefik.io'], resources: ['traefikservices'], verbs: release.mirror === undefined ? ['get', 'create', 'patch'] : ['get', 'create', 'patch', 'delete']},
      {apiGroups: [release.ingress?.traefikApiGroup ?? 'traefik.io'], resources: ['ingressroutes'], verbs: ['get', 'create', 'patch']},
    ],
  },
  kubeRouter: (client, release) => new TraefikCrdRouter(client, release),
  builtInQueries: (context) => {
    // Traefik names a Kubernetes backend `<namespace>-<service>-<port>@<provider>` (kubernetescrd, kubernetes).
    const selector = `service=~"${escapeLabel(escapeRegex(`${context.namespace}-${context.service}-${context.port}`))}@kubernetes.*"`
    return counterAndHistogramQueries({requests: 'traefik_service_requests_total', statusLabel: 'code', buckets: 'traefik_service_request_duration_seconds_bucket'}, selector, context.interval)
  },
} as const satisfies RouterDefinition

/** Traefik rules quote values with backticks, so a header text containing one cannot be written. */
export function traefikQuotingProblems(router: RouterKind, headerTexts: readonly string[]): RouterProblem[] {
  if (!headerTexts.some((text) => text.includes('`'))) return []
  return [{at: ['spec', 'match', 'header'], message: `router ${router} cannot match a header name, value or pattern containing a backtick: Traefik rules quote values with backticks`, suggestion: 'use a value without backticks'}]
}
