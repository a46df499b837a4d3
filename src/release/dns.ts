/**
 * Kubernetes name rules (k8s.io/apimachinery `validation.IsDNS1123Label` / `IsDNS1123Subdomain`).
 * kubernetes-models does not check name formats, so every name we emit goes through these.
 */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** Why `name` is not a DNS-1123 label (max 63 chars), or undefined when it is one. */
export function dns1123LabelProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty'
  if (name.length > 63) return `must be at most 63 characters (has ${name.length})`
  if (!DNS1123_LABEL.test(name)) return 'must consist of lower-case letters, digits and "-", and start and end with a letter or digit'
  return undefined
}

/** Why `name` is not a DNS-1123 subdomain (max 253 chars), or undefined when it is one. */
export function dns1123SubdomainProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty'
  if (name.length > 253) return `must be at most 253 characters (has ${name.length})`
  if (!DNS1123_SUBDOMAIN.test(name)) return 'must consist of lower-case letters, digits, "-" and ".", each part starting and ending with a letter or digit'
  return undefined
}

/** A lower-cased, hyphenated guess at a valid label, for suggestions. */
export function suggestDns1123Label(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'my-app'
}
