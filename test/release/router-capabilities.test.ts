import {describe, expect, it} from 'vitest'

import type {RouterKind} from '../../src/release/release.js'
import {canDo, routersSupporting} from '../../src/routers/capabilities.js'
import {ROUTERS, type RouterTable} from '../../src/routers/index.js'

// What each router can express comes from one place, its definition's `limits`, which both
// `canary validate` and the suggestions read.
function capabilities(router: RouterKind) {
  return {
    headerMatch: canDo(router, 'headerAlwaysNever') && canDo(router, 'headerExact'),
    headerPattern: canDo(router, 'headerPattern'),
    cookieMatch: canDo(router, 'cookie'),
    sticky: canDo(router, 'sticky'),
    mirror: canDo(router, 'mirror'),
  }
}

describe('router capabilities from the routers\' limits', () => {
  it.each([
    ['nginx', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: false}],
    ['traefik', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: true}],
    ['traefik-v1', {headerMatch: false, headerPattern: false, cookieMatch: false, sticky: true, mirror: false}],
    ['traefik-file', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: true}],
    ['gateway-api', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: false, mirror: true}],
    ['proxy', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: true}],
  ] as const)('%s', (router, expected) => {
    expect(capabilities(router)).toEqual(expected)
  })

  it('suggests the routers that can do a feature, in ROUTERS order', () => {
    expect(routersSupporting('mirror')).toEqual(['traefik', 'traefik-file', 'gateway-api', 'proxy'])
    expect(routersSupporting('sticky')).toEqual(['nginx', 'traefik', 'traefik-v1', 'traefik-file', 'proxy'])
  })

  it('lists every router kind once, under its own name', () => {
    for (const [kind, definition] of Object.entries(ROUTERS)) expect(definition.kind).toBe(kind)
  })

  it('a router kind without its definition, or under another name, does not compile (checked by tsc -p tsconfig.test.json)', () => {
    const {proxy: _proxy, ...withoutProxy} = ROUTERS
    // @ts-expect-error: ROUTER_KINDS names proxy, so a table without it is refused
    const missing: RouterTable = withoutProxy
    // @ts-expect-error: the traefik definition cannot stand for nginx
    const misnamed: RouterTable = {...ROUTERS, nginx: ROUTERS.traefik}
    expect(Object.keys(missing)).not.toContain('proxy')
    expect(misnamed.nginx.kind).toBe('traefik')
  })
})
