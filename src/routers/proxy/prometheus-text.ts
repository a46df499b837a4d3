/**
 * A small parser for the Prometheus text exposition format (version 0.0.4): sample lines
 * `name{label="value",…} value [timestamp]`, comments skipped. Enough to sum canary's own proxy
 * metrics across pods; not a general-purpose client.
 */

/** One sample line. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  return Number(text)
}

/** Every sample in an exposition; malformed lines are skipped. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] ?? ''] = unescape(l[2] ?? '')
    samples.push({name: m[1] ?? '', labels, value: parseValue(m[3] ?? '')})
  }
  return samples
}

/** `le` label value → seconds (`+Inf` → Infinity). */
export function leSeconds(le: string | undefined): number {
  return le === undefined ? NaN : parseValue(le)
}
