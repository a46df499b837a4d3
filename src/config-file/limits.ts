/**
 * Limits on release specs and proxy configs (docs/spec.md "Limits and YAML dialect"). They bound
 * the time and memory a hostile or broken file can cost; real files are far below them (the
 * example spec is 1.2 KB, a proxy config with 1,000 services about 100 KB).
 */
export const CONFIG_LIMITS = {
  /** File size. Kubernetes caps a ConfigMap (where the in-cluster proxy's config lives) at 1 MiB too. */
  maxBytes: 1024 * 1024,
  /** Nesting of lists and mappings, aliases expanded. The deepest real field is 6 levels down. */
  maxDepth: 64,
  /** Values that aliases stand for, counted as if each alias were written out (a "billion laughs" file stops here). */
  maxAliasedValues: 100_000,
  /** Problems listed in one error; the rest are counted. */
  maxProblems: 100,
} as const

export interface ConfigLimits {
  readonly maxBytes: number
  readonly maxDepth: number
  readonly maxAliasedValues: number
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB (${bytes} bytes)`
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`
  return `${bytes} bytes`
}

/** A user-controlled text shortened for a message (a 1 MB key must not make a 1 MB error line). */
export function preview(text: string, max = 60): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}… (${text.length} characters)`
}
