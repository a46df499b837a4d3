/**
 * Traefik 1.7 (`spec.ingress.router: traefik-v1`): one Ingress whose `service-weights` annotation
 * splits the path between the stable and canary Services (objects.ts), driven on a cluster by
 * kube-router.ts. No built-in queries: Traefik 1.x counts per frontend backend, not per Service.
 */
import type {RouterDefinition} from '../router-definition.js'
import {TraefikV1Router} from './kube-router.js'
import {buildTraefikV1Ingress} from './objects.js'

const NO_HEADER = 'Traefik 1.x Ingress annotations cannot route by header'

export const TRAEFIK_V1 = {
  kind: 'traefik-v1',
  // Traefik 1.7's Kubernetes Ingress provider maps only path rule types; header/cookie rules and mirroring need v2+.
  limits: {
    headerAlwaysNever: NO_HEADER,
    headerExact: NO_HEADER,
    headerPattern: NO_HEADER,
    cookie: 'Traefik 1.x Ingress annotations cannot route by cookie',
    mirror: 'Traefik 1.x has no traffic mirroring',
  },
  validate: ({weights, totalWeight}) => {
    // Traefik 1.7 service-weights take percentages with at most 3 decimals (docs/configuration/backends/kubernetes.md).
    const inexact = weights.find((weight) => !Number.isInteger(Math.round((weight * 100_000) / totalWeight * 1e6) / 1e6))
    if (inexact === undefined) return []
    return [{at: ['spec', 'totalWeight'], message: `router traefik-v1 cannot express weight ${inexact}/${totalWeight}: service-weights are percentages with at most 3 decimals`, suggestion: 'use a totalWeight of 100, 1000, 10000 or 100000'}]
  },
  build: buildTraefikV1Ingress,
  rbac: {rules: () => [{apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'create', 'patch']}]},
  kubeRouter: (client, release) => new TraefikV1Router(client, release),
} as const satisfies RouterDefinition
