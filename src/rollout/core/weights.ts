/**
 * The one weight type. A split is "canary gets `canary` out of `total`"; stable always gets the
 * rest, computed here and nowhere else. `total` is 100 unless the spec asks for finer steps
 * (e.g. 1000 for 0.1 % granularity, like ingress-nginx's `canary-weight-total`).
 */
export const DEFAULT_TOTAL_WEIGHT = 100

export interface Weights {
  readonly canary: number
  readonly total: number
}

export function weights(canary: number, total: number = DEFAULT_TOTAL_WEIGHT): Weights {
  return {canary, total}
}

export function stableWeight(w: Weights): number {
  return w.total - w.canary
}

/** Canary share as a percentage (for display and for routers whose unit is percent). */
export function canaryPercent(w: Weights): number {
  return (w.canary / w.total) * 100
}
