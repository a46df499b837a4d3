/** A small line diff (LCS) for `canary render --all-steps`: what changes from one step to the next. */

/** Unified-style hunks (`-`/`+`/` ` prefixed lines, `@@` separators) between two texts; empty when equal. */
export function lineDiff(before: string, after: string, contextLines = 2): string[] {
  const a = before.split('\n')
  const b = after.split('\n')
  const lcs: number[][] = Array.from({length: a.length + 1}, () => new Array<number>(b.length + 1).fill(0))
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const ops: Array<{op: ' ' | '-' | '+'; line: string}> = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({op: ' ', line: a[i]!})
      i++
      j++
    } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      // Deletions before insertions, as in unified diffs.
      ops.push({op: '-', line: a[i++]!})
    } else {
      ops.push({op: '+', line: b[j++]!})
    }
  }
  const changed = ops.map((o, index) => (o.op === ' ' ? -1 : index)).filter((index) => index >= 0)
  if (changed.length === 0) return []
  const keep = new Set<number>()
  for (const index of changed) for (let k = index - contextLines; k <= index + contextLines; k++) if (k >= 0 && k < ops.length) keep.add(k)
  const lines: string[] = []
  let previous = -2
  for (const index of [...keep].sort((x, y) => x - y)) {
    if (index !== previous + 1) lines.push('@@')
    lines.push(`${ops[index]!.op} ${ops[index]!.line}`.trimEnd())
    previous = index
  }
  return lines
}
