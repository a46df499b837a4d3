/**
 * "Did you mean" for unknown keys and names, in both config files and the CLI: the closest
 * candidate by edit distance, if close enough to be a typo. The distance counts a swap of two
 * neighbouring letters (`wieght`) as one edit, the commonest typo (optimal string alignment).
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  // Typos are short; a long input (a hostile 1 MB key) would make the edit distance a cost, not a help.
  if (input.length > MAX_INPUT) return undefined
  // Allow roughly one typo per three characters; beyond that the guess is noise.
  const allowed = Math.max(2, Math.floor(input.length / 3))
  const lowered = input.toLowerCase()
  let best: string | undefined
  let bestDistance = allowed + 1
  let compared = 0
  for (const candidate of candidates) {
    // The distance is at least the difference in length.
    if (Math.abs(candidate.length - input.length) >= bestDistance) continue
    // Thousands of names (services in a large proxy config) would make this a cost too.
    if (++compared > MAX_COMPARED) break
    const distance = editDistance(lowered, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

const MAX_INPUT = 64
const MAX_COMPARED = 1000

/** Levenshtein distance with adjacent transpositions (optimal string alignment), on three rolling rows. */
function editDistance(a: string, b: string): number {
  let beforePrevious: number[] = []
  let previous = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      let value = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, (beforePrevious[j - 2] ?? 0) + 1)
      current[j] = value
    }
    beforePrevious = previous
    previous = current
  }
  return previous[b.length] ?? 0
}
