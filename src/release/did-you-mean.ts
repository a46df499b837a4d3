/** "Did you mean" for unknown keys and names: the closest candidate by edit distance, if close enough. */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  // Typos are short; a long input (a hostile 1 MB key) would make the edit distance a cost, not a help.
  if (input.length > MAX_INPUT) return undefined
  const allowed = Math.max(2, Math.floor(input.length / 3))
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of candidates) {
    // The distance is at least the difference in length.
    if (Math.abs(candidate.length - input.length) > allowed) continue
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  // Allow roughly one typo per three characters; beyond that the guess is noise.
  if (best === undefined || bestDistance > allowed) return undefined
  return best
}

const MAX_INPUT = 64

/** Levenshtein distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({length: a.length + 1}, (_, i) => Array.from({length: b.length + 1}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number): number => rows[i]?.[j] ?? 0
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, at(i - 2, j - 2) + 1)
      rows[i]![j] = value
    }
  }
  return at(a.length, b.length)
}
