/**
 * Request validation and normalisation, done once before routing (docs/proxy.md "Request
 * targets"). Routing, the allow-list and the upstream must all see the same path, or a path that
 * the router reads one way and the upstream another walks around an allow-list (issue #12): so the
 * proxy routes on the normalised path and forwards exactly that path, and refuses what it cannot
 * normalise without guessing how an upstream would read it.
 *
 * Path rules, in order:
 * - percent-escapes must be `%` + two hex digits; escapes of unreserved characters (RFC 3986
 *   §2.3: ALPHA DIGIT - . _ ~) are decoded, every other escape is kept with uppercase hex (§6.2.2.1);
 * - refused (400): an encoded `/` or `\` (%2F, %5C: upstreams disagree on whether it separates
 *   segments), an encoded `%` that forms another escape (%252e: double encoding, which an
 *   upstream that decodes twice reads as `.`), a raw `\` (some servers read it as `/`), `;` (Tomcat-style path parameters turn
 *   `/..;/` into `..`), NUL and other control bytes raw or encoded, `#`, and escapes whose bytes
 *   are not valid UTF-8 (overlong forms such as %C0%AE decode to `.` in lenient decoders);
 * - other characters RFC 3986 does not allow in a path (`"<>^\`{|}[]`) are percent-encoded;
 * - empty segments are merged (`//a///b` → `/a/b`, nginx's merge_slashes);
 * - dot segments are removed (RFC 3986 §5.2.4), never above the root (`/../a` → `/a`).
 * The query string is forwarded unchanged (no route reads it).
 *
 * Pure: no I/O, no Node modules; table-tested in test/proxy/request-target.test.ts.
 */

/** The normalised parts of a request the proxy will route and forward. */
export interface RequestTarget {
  /** Normalised path: starts with `/`, no dot segments, no empty segments. */
  readonly path: string
  /** `?query` as received, or "" (no `?`). */
  readonly query: string
  /** Lowercased host without port and without a trailing dot; "" when the request has none (HTTP/1.0). */
  readonly host: string
  /** `host[:port]` as forwarded in `Host`; undefined when the request has no host. */
  readonly authority: string | undefined
}

/** Why a request is refused before a route or version is chosen. */
export interface RequestRefusal {
  readonly status: 400 | 501
  readonly reason: string
}

export type RequestCheck = {readonly ok: true; readonly target: RequestTarget} | ({readonly ok: false} & RequestRefusal)

/** What checkRequest reads from an incoming request. */
export interface RequestFacts {
  readonly method: string
  /** The request-target as received (req.url). */
  readonly url: string
  /** Flat [name, value, …] as received (req.rawHeaders). */
  readonly rawHeaders: readonly string[]
}

const UNRESERVED = /^[A-Za-z0-9._~-]$/
/** Characters allowed raw in a path besides unreserved ones and `%` (pchar, minus `;`, plus `/`). */
const PATH_RAW = new Set([...`!$&'()*+,=:@/`])
/** By char code below 128: 1 for a character a normalised path carries raw (unreserved or PATH_RAW). */
const KEEP_RAW = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c)
  if (UNRESERVED.test(ch) || PATH_RAW.has(ch)) KEEP_RAW[c] = 1
}

function refuse(status: 400 | 501, reason: string): RequestCheck {
  return {ok: false, status, reason}
}

/**
 * Validates a request and computes its normalised target. Refusals: 501 for CONNECT (a reverse
 * proxy does not tunnel), 400 for everything malformed or ambiguous.
 */
export function checkRequest(facts: RequestFacts): RequestCheck {
  const {method, url, rawHeaders} = facts
  if (method === 'CONNECT') return refuse(501, 'CONNECT is not supported by a reverse proxy')

  let hostHeader: string | undefined
  let transferEncoding: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === 4 && sameLetters(name, 'host')) {
      if (hostHeader !== undefined) return refuse(400, 'more than one Host header')
      hostHeader = rawHeaders[i + 1] ?? ''
    } else if (name.length === 17 && sameLetters(name, 'transfer-encoding')) {
      transferEncoding = transferEncoding === undefined ? (rawHeaders[i + 1] ?? '') : `${transferEncoding}, ${rawHeaders[i + 1] ?? ''}`
    }
  }
  // RFC 9112 §6.3: a request whose last transfer coding is not chunked has no knowable length.
  if (transferEncoding !== undefined && !/(^|,)\s*chunked\s*$/i.test(transferEncoding)) return refuse(400, 'Transfer-Encoding must end with chunked')

  let header: HostParts | undefined
  if (hostHeader !== undefined) {
    header = parseHost(hostHeader)
    if (header === undefined) return refuse(400, 'malformed Host header')
  }

  if (url === '*') return refuse(400, 'the asterisk form (OPTIONS *) is not forwarded: no route matches a request without a path')
  let rawPath: string
  let query: string
  let authority: HostParts | undefined = header
  if (url.charCodeAt(0) === 47) {
    ;[rawPath, query] = splitQuery(url)
  } else {
    // Absolute form (RFC 9112 §3.2.2): the target's authority wins; a Host that disagrees is refused.
    const absolute = /^(https?):\/\/([^/?#]*)(.*)$/i.exec(url)
    if (absolute === null) return refuse(400, 'request target must be a path or an http(s):// URL')
    const [, scheme = '', authorityText = '', rest = ''] = absolute
    if (authorityText.includes('@')) return refuse(400, 'absolute-form target must not carry user information')
    const target = parseHost(authorityText)
    if (target === undefined || target.host === '') return refuse(400, 'absolute-form target has a malformed host')
    if (header !== undefined && !sameAuthority(header, target, scheme.toLowerCase())) return refuse(400, 'Host header disagrees with the host of the absolute-form target')
    authority = target
    ;[rawPath, query] = splitQuery(rest === '' || rest.charCodeAt(0) === 63 ? `/${rest}` : rest)
  }
  if (query.includes('#') || rawPath.includes('#')) return refuse(400, 'request target must not contain a fragment (#)')
  if (hasControl(query)) return refuse(400, 'query contains control characters')
  const path = normalisePath(rawPath)
  if (!path.ok) return refuse(400, path.reason)
  return {
    ok: true,
    target: {
      path: path.path,
      query,
      host: authority?.host ?? '',
      authority: authority === undefined || authority.host === '' ? undefined : authority.port === undefined ? authority.host : `${authority.host}:${authority.port}`,
    },
  }
}

/** ASCII case-insensitive equality with a lowercase `lower` of the same length, without allocating. */
function sameLetters(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
}

function splitQuery(url: string): [string, string] {
  const q = url.indexOf('?')
  return q === -1 ? [url, ''] : [url.slice(0, q), url.slice(q)]
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) return true
  }
  return false
}

export type PathNormalisation = {readonly ok: true; readonly path: string} | {readonly ok: false; readonly reason: string}

/** Normalises an origin-form path (see the module comment for the rules). */
export function normalisePath(raw: string): PathNormalisation {
  if (raw.charCodeAt(0) !== 47) return {ok: false, reason: 'path must start with /'}
  // Almost every request: nothing to decode, encode or resolve.
  if (isNormalAlready(raw)) return {ok: true, path: raw}
  let out = ''
  // Bytes decoded from escapes above 0x7f, checked as UTF-8 once the scan is done.
  let highBytes: number[] | undefined
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!
    const c = ch.charCodeAt(0)
    if (c <= 0x20 || c >= 0x7f) return {ok: false, reason: 'path contains a control, space or non-ASCII character'}
    if (ch === '\\') return {ok: false, reason: 'path contains a backslash'}
    if (ch === ';') return {ok: false, reason: 'path contains ";" (path parameters are not supported)'}
    if (ch === '%') {
      const byte = hexByte(raw, i + 1)
      if (byte === undefined) return {ok: false, reason: 'malformed percent-escape in path'}
      i += 2
      const decoded = String.fromCharCode(byte)
      if (byte < 0x80 && UNRESERVED.test(decoded)) {
        highBytes?.push(-1)
        out += decoded
        continue
      }
      if (byte === 0x2f || byte === 0x5c) return {ok: false, reason: 'path contains an encoded slash or backslash (%2F, %5C)'}
      if (byte < 0x20 || byte === 0x7f) return {ok: false, reason: 'path contains an encoded control character'}
      if (byte >= 0x80) (highBytes ??= []).push(byte)
      else highBytes?.push(-1)
      out += `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`
      continue
    }
    highBytes?.push(-1)
    if (UNRESERVED.test(ch) || PATH_RAW.has(ch)) out += ch
    else out += `%${c.toString(16).toUpperCase()}`
  }
  if (highBytes !== undefined && !validUtf8Runs(highBytes)) return {ok: false, reason: 'percent-escapes in path are not valid UTF-8'}
  // Checked on the output: %25%32%65 normalises to %252e.
  if (/%25[0-9A-Fa-f]{2}/.test(out)) return {ok: false, reason: 'path contains a double-encoded escape (%25 followed by two hex digits)'}
  return {ok: true, path: removeDotSegments(out)}
}

/** True when `path` has only characters kept raw (no `%`), no empty segment and no dot segment. */
function isNormalAlready(path: string): boolean {
  const n = path.length
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i)
    if (c >= 128 || KEEP_RAW[c] === 0) return false
    if (c !== 47) continue
    const next = i + 1 < n ? path.charCodeAt(i + 1) : -1
    if (next === 47) return false
    if (next === 46) {
      // "/." or "/.." ending the path or followed by "/".
      const after = i + 2 < n ? path.charCodeAt(i + 2) : -1
      if (after === -1 || after === 47) return false
      if (after === 46 && (i + 3 >= n || path.charCodeAt(i + 3) === 47)) return false
    }
  }
  return true
}

function hexByte(text: string, at: number): number | undefined {
  const pair = text.slice(at, at + 2)
  return /^[0-9A-Fa-f]{2}$/.test(pair) ? parseInt(pair, 16) : undefined
}

const utf8 = new TextDecoder('utf-8', {fatal: true})

/** Each run of consecutive high bytes (separated by -1) must be valid UTF-8 on its own. */
function validUtf8Runs(bytes: readonly number[]): boolean {
  let run: number[] = []
  const check = () => {
    if (run.length === 0) return true
    try {
      utf8.decode(new Uint8Array(run))
      return true
    } catch {
      return false
    } finally {
      run = []
    }
  }
  for (const b of bytes) {
    if (b === -1) {
      if (!check()) return false
    } else run.push(b)
  }
  return check()
}

/** RFC 3986 §5.2.4 on a path whose `.` escapes are already decoded; empty segments merged. */
function removeDotSegments(path: string): string {
  const input = path.split('/')
  const output: string[] = []
  // input[0] is "" (the path starts with "/").
  let trailingSlash = false
  for (let i = 1; i < input.length; i++) {
    const segment = input[i]!
    const last = i === input.length - 1
    if (segment === '' || segment === '.') {
      trailingSlash = last
    } else if (segment === '..') {
      output.pop()
      trailingSlash = last
    } else {
      output.push(segment)
      trailingSlash = false
    }
  }
  const joined = `/${output.join('/')}`
  return trailingSlash && output.length > 0 ? `${joined}/` : joined
}

/** A parsed Host value or URL authority. */
export interface HostParts {
  /** Lowercased; IPv6 in brackets; no trailing dot. */
  readonly host: string
  readonly port: number | undefined
}

/**
 * Parses a Host header or URL authority: a DNS name or IPv4 address of letters, digits, `-`, `_`
 * and non-empty dot-separated labels (one trailing dot allowed and removed), or a bracketed IPv6
 * address; an optional port of 1-5 digits up to 65535. Percent-escapes, user information and
 * anything else are refused (undefined).
 */
export function parseHost(value: string): HostParts | undefined {
  let host: string
  let portText: string | undefined
  if (value.charCodeAt(0) === 91) {
    const end = value.indexOf(']')
    if (end === -1) return undefined
    host = value.slice(0, end + 1)
    const rest = value.slice(end + 1)
    if (rest !== '' && rest.charCodeAt(0) !== 58) return undefined
    portText = rest === '' ? undefined : rest.slice(1)
    if (!/^\[[0-9A-Fa-f:.]+\]$/.test(host) || !isIpv6(host.slice(1, -1))) return undefined
  } else {
    const colon = value.indexOf(':')
    host = colon === -1 ? value : value.slice(0, colon)
    portText = colon === -1 ? undefined : value.slice(colon + 1)
    if (host.endsWith('.')) host = host.slice(0, -1)
    if (!isDnsName(host)) return undefined
  }
  let port: number | undefined
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText)) return undefined
    port = Number(portText)
    if (port > 65535) return undefined
  }
  return {host: host.toLowerCase(), port}
}

/** Non-empty labels of letters, digits, `-` and `_`, separated by single dots. */
function isDnsName(host: string): boolean {
  const n = host.length
  if (n === 0) return false
  let labelLength = 0
  for (let i = 0; i < n; i++) {
    const c = host.charCodeAt(i)
    if (c === 46) {
      if (labelLength === 0) return false
      labelLength = 0
      continue
    }
    const lower = c | 0x20
    if (!((lower >= 97 && lower <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95)) return false
    labelLength++
  }
  return labelLength > 0
}

/** Enough of RFC 4291 text form to refuse garbage: hex groups, at most one `::`, optional dotted tail. */
function isIpv6(text: string): boolean {
  if (text.includes(':::') || (text.match(/::/g) ?? []).length > 1) return false
  let body = text
  let groupsNeeded = 8
  const v4 = /(^|:)(\d{1,3}(\.\d{1,3}){3})$/.exec(text)
  if (v4 !== null) {
    if (v4[2]!.split('.').some((octet) => Number(octet) > 255)) return false
    body = text.slice(0, text.length - v4[2]!.length)
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1)
    groupsNeeded = 6
  }
  const compressed = body.includes('::')
  const groups = body.split(/::|:/).filter((g) => g !== '')
  if (!groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false
  if (!compressed && (body.startsWith(':') || body.endsWith(':'))) return false
  return compressed ? groups.length < groupsNeeded : groups.length === groupsNeeded
}

const DEFAULT_PORT: Record<string, number> = {http: 80, https: 443}

/** Host header and absolute-form authority name the same host and port (missing ports default per scheme). */
function sameAuthority(header: HostParts, target: HostParts, scheme: string): boolean {
  const fallback = DEFAULT_PORT[scheme]
  return header.host === target.host && (header.port ?? fallback) === (target.port ?? fallback)
}
