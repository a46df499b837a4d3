/**
 * Durations in the release spec are Go-style strings (`400ms`, `30s`, `2m`, `1h30m`), the form
 * Argo Rollouts and Flagger users already write. A bare number is refused: `30` could mean
 * seconds or milliseconds, and guessing is how pauses end up 1000× too short.
 */
const UNIT_MS = {ms: 1, s: 1000, m: 60_000, h: 3_600_000} as const
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g

/** Milliseconds in a duration string, or undefined when it is not one. */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim()
  if (!DURATION.test(trimmed)) return undefined
  let totalMs = 0
  for (const match of trimmed.matchAll(PART)) {
    totalMs += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
  }
  return Math.round(totalMs)
}

/** The shortest exact spelling of a duration, for messages and `--all-steps` output. */
export function formatDurationMs(durationMs: number): string {
  if (durationMs === 0) return '0s'
  const parts: string[] = []
  let restMs = durationMs
  for (const [unit, sizeMs] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const count = Math.floor(restMs / sizeMs)
    if (count > 0) {
      parts.push(`${count}${unit}`)
      restMs -= count * sizeMs
    }
  }
  return parts.join('')
}
