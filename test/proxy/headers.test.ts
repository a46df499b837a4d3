import {describe, expect, it} from 'vitest'

import {downstreamResponseHeaders, readCookie, upstreamRequestHeaders} from '../../src/proxy/headers.js'
import {clientAddress, createIpAllowList} from '../../src/proxy/ip-allow-list.js'
import {statusForError} from '../../src/proxy/status-for-error.js'

const facts = {peer: '10.0.0.9', clientAddress: '10.0.0.9', proto: 'http', localPort: '8080', trustIncoming: false}

function toObject(flat: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (let i = 0; i < flat.length; i += 2) (out[flat[i]!] ??= []).push(flat[i + 1]!)
  return out
}

describe('upstreamRequestHeaders', () => {
  it('strips hop-by-hop headers and the names listed in Connection', () => {
    const h = toObject(upstreamRequestHeaders({host: 'a', connection: 'keep-alive, x-secret', 'keep-alive': 'timeout=5', 'x-secret': '1', te: 'trailers', 'proxy-authorization': 'p', accept: '*/*'}, facts, undefined, false))
    expect(Object.keys(h).sort()).toEqual(['accept', 'host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-real-ip'])
  })

  it('replaces untrusted X-Forwarded-* and appends to trusted ones', () => {
    const incoming = {host: 'shop', 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https'}
    expect(toObject(upstreamRequestHeaders(incoming, facts, undefined, false))).toMatchObject({'x-forwarded-for': ['10.0.0.9'], 'x-forwarded-proto': ['http'], 'x-forwarded-host': ['shop'], 'x-forwarded-port': ['8080'], 'x-real-ip': ['10.0.0.9']})
    expect(toObject(upstreamRequestHeaders(incoming, {...facts, trustIncoming: true, clientAddress: '1.2.3.4'}, undefined, false))).toMatchObject({'x-forwarded-for': ['1.2.3.4, 10.0.0.9'], 'x-forwarded-proto': ['https'], 'x-real-ip': ['1.2.3.4']})
  })

  it('applies set and remove edits', () => {
    const edits = {set: [['x-custom-id', 'test']] as [string, string][], remove: new Set(['cookie'])}
    const h = toObject(upstreamRequestHeaders({host: 'a', cookie: 'c=1', 'x-custom-id': 'client'}, facts, edits, false))
    expect(h['x-custom-id']).toEqual(['test'])
    expect(h.cookie).toBeUndefined()
  })

  it('keeps Upgrade and sets Connection: upgrade for WebSocket', () => {
    const h = toObject(upstreamRequestHeaders({host: 'a', connection: 'Upgrade', upgrade: 'websocket'}, facts, undefined, true))
    expect(h).toMatchObject({upgrade: ['websocket'], connection: ['upgrade']})
  })
})

describe('downstreamResponseHeaders', () => {
  it('strips hop-by-hop and Connection-listed names, adds edits and the sticky cookie', () => {
    const raw = ['Content-Type', 'text/plain', 'Connection', 'x-internal', 'X-Internal', '1', 'Transfer-Encoding', 'chunked', 'Server', 'up'].map((s) => Buffer.from(s))
    const out = downstreamResponseHeaders(raw, {set: [['x-served-by', 'canary']], remove: new Set(['server'])}, 'sv=abc; Path=/')
    expect({...out}).toEqual({'content-type': 'text/plain', 'x-served-by': 'canary', 'set-cookie': 'sv=abc; Path=/'})
  })

  it('keeps repeated headers such as Set-Cookie, adding the sticky cookie to them', () => {
    const raw = ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', '__proto__', 'x'].map((s) => Buffer.from(s))
    const out = downstreamResponseHeaders(raw, undefined, 'sv=abc')
    expect(out['set-cookie']).toEqual(['a=1', 'b=2', 'sv=abc'])
    expect(Object.keys(out)).toEqual(['set-cookie', '__proto__'])
    expect(Object.getPrototypeOf(out)).toBeNull()
  })
})

describe('readCookie', () => {
  it('finds the first cookie of a name (case-sensitive), keeping quotes as part of the value', () => {
    expect(readCookie('a=1; canary=always; b=2', 'canary')).toBe('always')
    expect(readCookie('canary_version="x1"', 'canary_version')).toBe('"x1"')
    expect(readCookie('canary=x; canary=always', 'canary')).toBe('x')
    expect(readCookie('Canary=always', 'canary')).toBeUndefined()
    expect(readCookie('xcanary=1', 'canary')).toBeUndefined()
    expect(readCookie(undefined, 'canary')).toBeUndefined()
  })
})

describe('IP allow-list', () => {
  it('checks IPv4, IPv6 and IPv4-mapped IPv6 addresses against CIDRs', () => {
    const list = createIpAllowList(['127.0.0.1/32', '10.0.0.0/8', '::1/128'], 'route r')
    expect(list.allows('127.0.0.1')).toBe(true)
    expect(list.allows('::ffff:10.1.2.3')).toBe(true)
    expect(list.allows('::1')).toBe(true)
    expect(list.allows('192.168.0.1')).toBe(false)
    expect(list.allows('not-an-ip')).toBe(false)
  })

  it('uses X-Forwarded-For only with a trusted hop count', () => {
    expect(clientAddress('10.0.0.1', '1.1.1.1, 2.2.2.2', 0)).toBe('10.0.0.1')
    expect(clientAddress('10.0.0.1', '1.1.1.1, 2.2.2.2', 1)).toBe('2.2.2.2')
    expect(clientAddress('10.0.0.1', '1.1.1.1, 2.2.2.2', 2)).toBe('1.1.1.1')
    expect(clientAddress('10.0.0.1', '1.1.1.1', 3)).toBe('10.0.0.1')
  })
})

describe('statusForError', () => {
  it('maps timeouts to 504, connection failures to 502 and client aborts to 499', () => {
    expect(statusForError(Object.assign(new Error('t'), {code: 'UND_ERR_HEADERS_TIMEOUT'}), false)).toBe(504)
    expect(statusForError(Object.assign(new Error('t'), {code: 'UND_ERR_BODY_TIMEOUT'}), false)).toBe(504)
    expect(statusForError(Object.assign(new Error('r'), {code: 'ECONNREFUSED'}), false)).toBe(502)
    expect(statusForError(Object.assign(new Error('c'), {code: 'UND_ERR_CONNECT_TIMEOUT'}), false)).toBe(502)
    expect(statusForError(Object.assign(new Error('s'), {code: 'UND_ERR_SOCKET'}), false)).toBe(502)
    expect(statusForError(new Error('x'), true)).toBe(499)
  })
})
