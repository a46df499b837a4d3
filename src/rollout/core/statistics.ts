/**
 * Exact binomial tail probabilities and Clopper–Pearson bounds, through the regularized
 * incomplete beta function (Numerical Recipes §6.4: Lentz's continued fraction; Lanczos log-gamma).
 * Exact rather than normal approximations because canary windows are small: 200 requests with
 * 3 errors is where the normal approximation is worst.
 */

const LANCZOS = [676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  const z = x - 1
  let sum = 0.99999999999980993
  for (let i = 0; i < LANCZOS.length; i++) sum += (LANCZOS[i] as number) / (z + i + 1)
  const t = z + LANCZOS.length - 0.5
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum)
}

/** I_x(a, b), the regularized incomplete beta function. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x)
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a
  return 1 - (Math.exp(logFront) * betaContinuedFraction(1 - x, b, a)) / b
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-14) break
  }
  return h
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1
  if (k > n) return 0
  if (p <= 0) return 0
  if (p >= 1) return 1
  return regularizedBeta(p, k, n - k + 1)
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
export function binomialLowerTail(k: number, n: number, p: number): number {
  return 1 - binomialUpperTail(k + 1, n, p)
}

/**
 * One-sided Clopper–Pearson lower bound: the smallest p with P(X ≥ successes | p) > alpha.
 * P(true p < bound) ≤ alpha, whatever n.
 */
export function binomialLowerBound(successes: number, trials: number, alpha: number): number {
  if (successes <= 0 || trials <= 0) return 0
  return bisect((p) => binomialUpperTail(successes, trials, p) > alpha, 0, 1)
}

/** One-sided Clopper–Pearson upper bound: the largest p with P(X ≤ successes | p) > alpha. */
export function binomialUpperBound(successes: number, trials: number, alpha: number): number {
  if (trials <= 0 || successes >= trials) return 1
  return 1 - binomialLowerBound(trials - successes, trials, alpha)
}

/** The boundary where `isAbove` switches from false to true on [low, high] (monotone predicate). */
function bisect(isAbove: (p: number) => boolean, low: number, high: number): number {
  let lo = low
  let hi = high
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2
    if (isAbove(mid)) hi = mid
    else lo = mid
  }
  return (lo + hi) / 2
}
