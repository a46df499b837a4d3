import {describe, expect, it} from 'vitest'

import type {ProxyRouteConfig} from '../../src/proxy/config.js'
import {compilePathPattern, RouteTable, stripPathPrefix} from '../../src/proxy/route-table.js'

function table(...routes: Partial<ProxyRouteConfig>[]): RouteTable {
  return new RouteTable({routes: routes.map((r, i) => ({name: `r${i}`, service: 's', stripPrefix: false, ...r}))})
}

const match = (t: RouteTable, host: string, path: string, method = 'GET', headers: Record<string, string> = {}) => t.match(host, path, method, headers)?.name

describe('RouteTable', () => {
  it('matches exact hosts and *.example.com wildcards (not the bare domain)', () => {
    const t = table({host: 'shop.example.com'}, {host: '*.example.com'})
    expect(match(t, 'shop.example.com', '/')).toBe('r0')
    expect(match(t, 'a.b.example.com', '/')).toBe('r1')
    expect(match(t, 'example.com', '/')).toBeUndefined()
  })

  it('matches a bracketed IPv6 host', () => {
    expect(match(table({host: '[::1]'}), '[::1]', '/')).toBe('r0')
  })

  it('matches path prefixes on segment boundaries', () => {
    const t = table({pathPrefix: '/cheddar'})
    expect(match(t, 'h', '/cheddar')).toBe('r0')
    expect(match(t, 'h', '/cheddar/x')).toBe('r0')
    expect(match(t, 'h', '/cheddars')).toBeUndefined()
  })

  it('matches path patterns with named parameters', () => {
    const t = table({path: '/cheddar/{name}/{id:[0-9]+}'})
    expect(match(t, 'h', '/cheddar/mature/42')).toBe('r0')
    expect(match(t, 'h', '/cheddar/mature/x42')).toBeUndefined()
    expect(compilePathPattern('/cheddar/{name}/{id:[0-9]+}').exec('/cheddar/mild/7')?.groups).toEqual({name: 'mild', id: '7'})
  })

  it('prefers the longer path when no priority is set, whatever the file order', () => {
    const t = table({pathPrefix: '/'}, {pathPrefix: '/api'}, {pathPrefix: '/api/v2'})
    expect(match(t, 'h', '/api/v2/x')).toBe('r2')
    expect(match(t, 'h', '/api/x')).toBe('r1')
    expect(match(t, 'h', '/x')).toBe('r0')
  })

  it('lets an explicit priority win over a more specific rule', () => {
    const t = table({pathPrefix: '/api/v2'}, {pathPrefix: '/', priority: 10})
    expect(match(t, 'h', '/api/v2/x')).toBe('r1')
  })

  it('prefers an exact path over a prefix of the same length', () => {
    const t = table({pathPrefix: '/a'}, {path: '/a'})
    expect(match(t, 'h', '/a')).toBe('r1')
  })

  it('matches methods and headers', () => {
    const t = table({method: ['POST', 'put'], pathPrefix: '/w'}, {header: {name: 'X-Beta', value: 'yes'}}, {header: {name: 'X-User', pattern: '^u[0-9]+$'}})
    expect(match(t, 'h', '/w', 'PUT')).toBe('r0')
    expect(match(t, 'h', '/w', 'GET')).toBeUndefined()
    expect(match(t, 'h', '/', 'GET', {'x-beta': 'yes'})).toBe('r1')
    expect(match(t, 'h', '/', 'GET', {'x-beta': 'no', 'x-user': 'u12'})).toBe('r2')
  })

  it('strips a prefix and keeps the query', () => {
    expect(stripPathPrefix('/cheddar/x?y=1', '/cheddar')).toBe('/x?y=1')
    expect(stripPathPrefix('/cheddar', '/cheddar')).toBe('/')
    expect(stripPathPrefix('/cheddar?y=1', '/cheddar/')).toBe('/?y=1')
  })
})
