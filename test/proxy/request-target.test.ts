import {describe, expect, it} from 'vitest'

import {checkRequest, normalisePath, parseHost} from '../../src/proxy/request-target.js'

/** [input, normalised path] */
const NORMALISED: [string, string][] = [
  // unchanged
  ['/', '/'],
  ['/a', '/a'],
  ['/a/b/c', '/a/b/c'],
  ['/a/b/', '/a/b/'],
  ['/a-b_c.d~e', '/a-b_c.d~e'],
  ["/!$&'()*+,=:@", "/!$&'()*+,=:@"],
  ['/a.b/c..d/...', '/a.b/c..d/...'],
  ['/.hidden', '/.hidden'],
  ['/..a/b..', '/..a/b..'],
  // dot segments (RFC 3986 §5.2.4 and its examples)
  ['/.', '/'],
  ['/..', '/'],
  ['/./', '/'],
  ['/../', '/'],
  ['/a/.', '/a/'],
  ['/a/..', '/'],
  ['/a/./b', '/a/b'],
  ['/a/../b', '/b'],
  ['/a/b/../c', '/a/c'],
  ['/a/b/../../c', '/c'],
  ['/a/b/c/./../../g', '/a/g'],
  ['/mid/content=5/../6', '/mid/6'],
  ['/../../../etc/passwd', '/etc/passwd'],
  ['/x/../internal/secret', '/internal/secret'],
  ['/x/./../internal/./secret', '/internal/secret'],
  ['/a/b/..', '/a/'],
  ['/a/b/.', '/a/b/'],
  // encoded dots are dots
  ['/x/%2e%2e/internal/secret', '/internal/secret'],
  ['/x/%2E%2E/internal/secret', '/internal/secret'],
  ['/x/.%2e/internal', '/internal'],
  ['/x/%2e./internal', '/internal'],
  ['/%2e/internal', '/internal'],
  ['/%2e%2e%2e', '/...'],
  // empty segments merged
  ['//internal/secret', '/internal/secret'],
  ['///internal//secret', '/internal/secret'],
  ['/a//', '/a/'],
  ['//', '/'],
  ['//..//internal', '/internal'],
  // unreserved escapes decoded, any case of hex
  ['/intern%61l/secret', '/internal/secret'],
  ['/%69%6E%74%65%72%6E%61%6C', '/internal'],
  ['/%41%5a%61%7a%30%39', '/AZaz09'],
  ['/%2D%2d%5F%7E%2E', '/--_~.'],
  // other escapes kept, hex uppercased
  ['/a%20b', '/a%20b'],
  ['/a%3fb', '/a%3Fb'],
  ['/a%3Bb', '/a%3Bb'],
  ['/a%25', '/a%25'],
  ['/50%25off', '/50%25off'],
  ['/a%25/b', '/a%25/b'],
  ['/%23', '/%23'],
  ['/%c3%a9', '/%C3%A9'],
  ['/%E2%82%AC', '/%E2%82%AC'],
  ['/%F0%9F%98%80', '/%F0%9F%98%80'],
  ['/%ef%bb%bf', '/%EF%BB%BF'],
  // characters a path may not carry raw are encoded
  ['/a"b', '/a%22b'],
  ['/<script>', '/%3Cscript%3E'],
  ['/a|b^c`d{e}f', '/a%7Cb%5Ec%60d%7Be%7Df'],
  ['/[::1]', '/%5B::1%5D'],
]

/** [input, reason fragment] */
const REFUSED: [string, string][] = [
  ['', 'must start with /'],
  ['a/b', 'must start with /'],
  ['/a\\b', 'backslash'],
  ['/..\\internal', 'backslash'],
  ['/a;b', ';'],
  ['/x/..;/internal/secret', ';'],
  ['/internal;jsessionid=1/secret', ';'],
  ['/a%2Fb', 'encoded slash'],
  ['/a%2fb', 'encoded slash'],
  ['/x%2F..%2Finternal', 'encoded slash'],
  ['/a%5Cb', 'encoded slash'],
  ['/a%5cb', 'encoded slash'],
  ['/a%00b', 'control'],
  ['/a%0Ab', 'control'],
  ['/a%0db', 'control'],
  ['/a%1F', 'control'],
  ['/a%7F', 'control'],
  ['/a%09', 'control'],
  ['/a%', 'malformed'],
  ['/a%2', 'malformed'],
  ['/a%zz', 'malformed'],
  ['/a%g0', 'malformed'],
  ['/a%%32%65', 'malformed'],
  ['/a% 2', 'malformed'],
  ['/a%+1', 'malformed'],
  ['/a b', 'control'],
  ['/a\tb', 'control'],
  ['/a\u0000', 'control'],
  ['/a\u007f', 'control'],
  ['/a\u00e9', 'non-ASCII'],
  // double encoding, also when normalisation forms it
  ['/a%252e%252e', 'double-encoded'],
  ['/%252e%252e/internal', 'double-encoded'],
  ['/%252F', 'double-encoded'],
  ['/%25%32%65', 'double-encoded'],
  ['/%25%32%46', 'double-encoded'],
  ['/%2525', 'double-encoded'],
  ['/%25c0%25ae', 'double-encoded'],
  // invalid UTF-8: overlong dots and slashes, lone continuation bytes, truncated sequences, surrogates, > U+10FFFF
  ['/%C0%AE%C0%AE/internal', 'UTF-8'],
  ['/%C0%AF', 'UTF-8'],
  ['/%E0%80%AE', 'UTF-8'],
  ['/%F0%80%80%AE', 'UTF-8'],
  ['/%C1%9C', 'UTF-8'],
  ['/%80', 'UTF-8'],
  ['/%BF', 'UTF-8'],
  ['/%C3', 'UTF-8'],
  ['/%E2%82', 'UTF-8'],
  ['/%C3/%A9', 'UTF-8'],
  ['/%C3%41%A9', 'UTF-8'],
  ['/%ED%A0%80', 'UTF-8'],
  ['/%F4%90%80%80', 'UTF-8'],
  ['/%FF', 'UTF-8'],
  ['/%FE%FF', 'UTF-8'],
]

describe('normalisePath', () => {
  for (const [input, expected] of NORMALISED) {
    it(`${JSON.stringify(input)} → ${expected}`, () => {
      expect(normalisePath(input)).toEqual({ok: true, path: expected})
    })
  }
  for (const [input, reason] of REFUSED) {
    it(`${JSON.stringify(input)} is refused (${reason})`, () => {
      const result = normalisePath(input)
      expect(result.ok).toBe(false)
      if (!result.ok) expect(result.reason).toContain(reason)
    })
  }

  it('is idempotent on every normalised case', () => {
    for (const [, expected] of NORMALISED) expect(normalisePath(expected)).toEqual({ok: true, path: expected})
  })
})

describe('parseHost', () => {
  const good: [string, {host: string; port: number | undefined}][] = [
    ['example.com', {host: 'example.com', port: undefined}],
    ['Example.COM', {host: 'example.com', port: undefined}],
    ['example.com.', {host: 'example.com', port: undefined}],
    ['example.com:8080', {host: 'example.com', port: 8080}],
    ['example.com.:8080', {host: 'example.com', port: 8080}],
    ['example.com:', {host: 'example.com', port: undefined}],
    ['a_b.internal', {host: 'a_b.internal', port: undefined}],
    ['127.0.0.1:1', {host: '127.0.0.1', port: 1}],
    ['[::1]', {host: '[::1]', port: undefined}],
    ['[::1]:65535', {host: '[::1]', port: 65535}],
    ['[::1]:', {host: '[::1]', port: undefined}],
    ['[2001:DB8::1]', {host: '[2001:db8::1]', port: undefined}],
    ['[::ffff:10.0.0.1]:80', {host: '[::ffff:10.0.0.1]', port: 80}],
    ['[1:2:3:4:5:6:7:8]', {host: '[1:2:3:4:5:6:7:8]', port: undefined}],
  ]
  for (const [input, expected] of good) it(`${input} → ${expected.host}:${expected.port}`, () => expect(parseHost(input)).toEqual(expected))

  const bad = ['', '[x', '[::1', '[::1]x', '[zz::1]', '[1:2:3:4:5:6:7:8:9]', '[:::]', '[1::2::3]', '[::ffff:300.0.0.1]', 'a..b', '.a', '..', 'a:b', 'a:65536', 'a:123456', 'a:-1', 'a b', 'a,b', 'a@b', 'user@a', 'a%2eb', 'a/b', 'a\\b', 'a;b', 'é.com', 'a\u0000', 'a:80:80', '*.a']
  for (const input of bad) it(`${JSON.stringify(input)} is refused`, () => expect(parseHost(input)).toBeUndefined())
})

function raw(...pairs: [string, string][]): string[] {
  return pairs.flat()
}

describe('checkRequest', () => {
  it('routes and forwards the normalised path with the query unchanged', () => {
    expect(checkRequest({method: 'GET', url: '/a/../b?x=/../%2F&y', rawHeaders: raw(['Host', 'Svc.Local.:8080'])})).toEqual({
      ok: true,
      target: {path: '/b', query: '?x=/../%2F&y', host: 'svc.local', authority: 'svc.local:8080'},
    })
  })

  it('turns the absolute form into origin form and takes the host from the target', () => {
    expect(checkRequest({method: 'GET', url: 'http://A/internal/../x?q', rawHeaders: raw(['Host', 'a'])})).toEqual({ok: true, target: {path: '/x', query: '?q', host: 'a', authority: 'a'}})
    expect(checkRequest({method: 'GET', url: 'HTTP://a:8080', rawHeaders: raw(['host', 'a:8080'])})).toEqual({ok: true, target: {path: '/', query: '', host: 'a', authority: 'a:8080'}})
    expect(checkRequest({method: 'GET', url: 'http://a?q', rawHeaders: raw(['host', 'a:80'])})).toEqual({ok: true, target: {path: '/', query: '?q', host: 'a', authority: 'a'}})
    expect(checkRequest({method: 'GET', url: 'https://a:443/x', rawHeaders: raw(['host', 'a'])})).toMatchObject({ok: true, target: {path: '/x', host: 'a'}})
    // HTTP/1.0 without Host: the target's authority.
    expect(checkRequest({method: 'GET', url: 'http://a/x', rawHeaders: []})).toMatchObject({ok: true, target: {path: '/x', host: 'a', authority: 'a'}})
  })

  const refused: [string, {method?: string; url: string; rawHeaders?: string[]}, number, string][] = [
    ['CONNECT', {method: 'CONNECT', url: 'a:443'}, 501, 'CONNECT'],
    ['OPTIONS *', {method: 'OPTIONS', url: '*'}, 400, 'asterisk'],
    ['a Host that disagrees with the absolute form', {url: 'http://a/internal/secret', rawHeaders: raw(['Host', 'b'])}, 400, 'disagrees'],
    ['a port that disagrees with the absolute form', {url: 'http://a:81/x', rawHeaders: raw(['Host', 'a'])}, 400, 'disagrees'],
    ['user information in the absolute form', {url: 'http://user@a/x', rawHeaders: raw(['Host', 'a'])}, 400, 'user information'],
    ['another scheme', {url: 'ftp://a/x'}, 400, 'path or an http(s)'],
    ['a relative target', {url: 'a/b'}, 400, 'path or an http(s)'],
    ['an absolute form without a host', {url: 'http:///x'}, 400, 'malformed host'],
    ['an absolute form with a malformed host', {url: 'http://[x/y'}, 400, 'malformed host'],
    ['two Host headers', {url: '/', rawHeaders: raw(['Host', 'a'], ['host', 'a'])}, 400, 'more than one Host'],
    ['a malformed Host', {url: '/', rawHeaders: raw(['Host', '[x'])}, 400, 'malformed Host'],
    ['an empty Host', {url: '/', rawHeaders: raw(['Host', ''])}, 400, 'malformed Host'],
    ['a fragment', {url: '/a#b', rawHeaders: raw(['Host', 'a'])}, 400, 'fragment'],
    ['a fragment in the query', {url: '/a?b#c', rawHeaders: raw(['Host', 'a'])}, 400, 'fragment'],
    ['Transfer-Encoding not ending in chunked', {url: '/', rawHeaders: raw(['Host', 'a'], ['Transfer-Encoding', 'gzip'])}, 400, 'chunked'],
    ['Transfer-Encoding chunked then gzip over two lines', {url: '/', rawHeaders: raw(['Host', 'a'], ['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'gzip'])}, 400, 'chunked'],
    ['an encoded slash', {url: '/internal%2Fsecret', rawHeaders: raw(['Host', 'a'])}, 400, 'encoded slash'],
  ]
  for (const [name, request, status, reason] of refused) {
    it(`refuses ${name} with ${status}`, () => {
      const result = checkRequest({method: request.method ?? 'GET', url: request.url, rawHeaders: request.rawHeaders ?? []})
      expect(result).toMatchObject({ok: false, status})
      if (!result.ok) expect(result.reason).toContain(reason)
    })
  }

  it('accepts Transfer-Encoding ending in chunked', () => {
    expect(checkRequest({method: 'POST', url: '/', rawHeaders: raw(['Host', 'a'], ['Transfer-Encoding', 'gzip, chunked'])}).ok).toBe(true)
  })
})
