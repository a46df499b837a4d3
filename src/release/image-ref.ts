/**
 * Container image references, following the grammar of distribution/reference (what Docker,
 * containerd and Kubernetes accept): `[domain[:port]/]path[:tag][@algorithm:hex]`.
 */

/** A parsed image reference; `repository` is everything before the tag/digest. */
export interface ImageRef {
  /** Registry host (with port), e.g. `ghcr.io`; undefined for Docker Hub short names like `nginx`. */
  readonly domain: string | undefined
  /** Path inside the registry, e.g. `acme/my-app`. */
  readonly path: string
  /** `domain/path` (or just `path`): the part a new tag is appended to. */
  readonly repository: string
  /** Tag such as `v1`, if any. */
  readonly tag: string | undefined
  /** Digest such as `sha256:…`, if any. */
  readonly digest: string | undefined
  /** The reference exactly as it should be written into a pod spec. */
  readonly ref: string
}

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
const PATH = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`)
const DOMAIN = /^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/
const SHA256_HEX = /^[a-f0-9]{64}$/

/** Why `text` is not an image reference, or undefined when it is one. */
export function imageRefProblem(text: string): string | undefined {
  const result = tryParseImageRef(text)
  return typeof result === 'string' ? result : undefined
}

/** Parses an image reference; throws an Error whose message says what is wrong. */
export function parseImageRef(text: string): ImageRef {
  const result = tryParseImageRef(text)
  if (typeof result === 'string') throw new Error(`image reference "${text}" ${result}`)
  return result
}

function tryParseImageRef(text: string): ImageRef | string {
  if (text.length === 0) return 'is empty'
  if (text.length > 255 + 128 + 80) return 'is too long'
  if (/\s/.test(text)) return 'must not contain whitespace'
  let rest = text
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) return `has an invalid digest "${digest}" (expected e.g. sha256:<64 hex digits>)`
    if (digest.startsWith('sha256:') && !SHA256_HEX.test(digest.slice('sha256:'.length))) return 'has a sha256 digest that is not 64 lower-case hex digits'
  }
  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const lastColon = rest.lastIndexOf(':')
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1)
    rest = rest.slice(0, lastColon)
    if (!TAG.test(tag)) return `has an invalid tag "${tag}" (letters, digits, "_", "." and "-", at most 128)`
  }
  let domain: string | undefined
  let path = rest
  const firstSlash = rest.indexOf('/')
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash)
    // The first component is a registry when it looks like a host (distribution/reference splitDockerDomain).
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first
      path = rest.slice(firstSlash + 1)
      if (!DOMAIN.test(domain)) return `has an invalid registry "${domain}"`
    }
  }
  if (path.length === 0) return 'has no repository name'
  if (path !== path.toLowerCase()) return 'must have a lower-case repository name'
  if (!PATH.test(path)) return `has an invalid repository name "${path}"`
  const repository = domain === undefined ? path : `${domain}/${path}`
  return {domain, path, repository, tag, digest, ref: text}
}

/**
 * The canary image for `--image`: a bare tag (`v2`) or digest (`sha256:…`, `@sha256:…`) is applied to
 * the stable image's repository (`ghcr.io/acme/my-app:v1` + `v2` → `ghcr.io/acme/my-app:v2`); anything
 * with a `/` or `:` is a full reference and is used as is. Throws an Error describing a bad value.
 */
export function resolveCanaryImage(stableImage: string | ImageRef, refOrTag: string): ImageRef {
  const stable = typeof stableImage === 'string' ? parseImageRef(stableImage) : stableImage
  const value = refOrTag.trim()
  const digest = value.startsWith('@') ? value.slice(1) : value.startsWith('sha256:') ? value : undefined
  if (digest !== undefined) {
    if (!DIGEST.test(digest) || !SHA256_HEX.test(digest.slice(digest.indexOf(':') + 1))) {
      throw new Error(`image digest "${refOrTag}" is not valid (expected sha256:<64 hex digits>)`)
    }
    return parseImageRef(`${stable.repository}@${digest}`)
  }
  if (!value.includes('/') && !value.includes(':') && !value.includes('@')) {
    if (!TAG.test(value)) throw new Error(`image tag "${refOrTag}" is not valid (letters, digits, "_", "." and "-", at most 128)`)
    return parseImageRef(`${stable.repository}:${value}`)
  }
  return parseImageRef(value)
}
