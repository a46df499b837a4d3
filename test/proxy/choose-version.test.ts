import {describe, expect, it} from 'vitest'

import {chooseVersion, type ChoosableService, type HeaderOverride, type StickyPrecedence, type VersionChoiceFacts} from '../../src/proxy/choose-version.js'

interface V {
  name: string
  healthy: boolean
}

function service(options: {header?: HeaderOverride; canaryHealthy?: boolean; stableHealthy?: boolean; precedence?: StickyPrecedence} = {}): ChoosableService<V> {
  const stable = {name: 'stable', healthy: options.stableHealthy ?? true}
  const canary = {name: 'canary', healthy: options.canaryHealthy ?? true}
  return {
    canary,
    stable,
    header: options.header ?? {},
    stickyPrecedence: options.precedence ?? 'first',
    stickyVersion: (value) => (value === 'h-stable' ? stable : value === 'h-canary' ? canary : undefined),
    // The weighted pick is a fixed sentinel so the table shows when weights decided.
    pickByWeight: () => (stable.healthy ? stable : canary.healthy ? canary : undefined),
  }
}

const none: VersionChoiceFacts = {header: undefined, cookie: undefined, sticky: undefined}

describe('chooseVersion, default precedence (ingress-nginx): sticky, then header, then cookie, then weights', () => {
  const table: [string, Partial<VersionChoiceFacts>, HeaderOverride | undefined, string, string][] = [
    ['a stable sticky cookie beats header always', {header: 'always', sticky: 'h-stable'}, undefined, 'stable', 'sticky'],
    ['a canary sticky cookie beats header never', {header: 'never', sticky: 'h-canary'}, undefined, 'canary', 'sticky'],
    ['a canary sticky cookie beats cookie never', {cookie: 'never', sticky: 'h-canary'}, undefined, 'canary', 'sticky'],
    ['an unknown sticky value falls through to the header', {header: 'always', sticky: 'gone'}, undefined, 'canary', 'header'],
    ['header always → canary', {header: 'always'}, undefined, 'canary', 'header'],
    ['header never → stable, even with cookie always', {header: 'never', cookie: 'always'}, undefined, 'stable', 'header'],
    ['other header values fall through to the cookie', {header: 'maybe', cookie: 'always'}, undefined, 'canary', 'cookie'],
    ['header values are case-sensitive: Always falls through', {header: 'Always'}, undefined, 'stable', 'weight'],
    ['header value match → canary', {header: 'beta'}, {value: 'beta'}, 'canary', 'header'],
    ['with value set, "always" does not match and falls through', {header: 'always'}, {value: 'beta'}, 'stable', 'weight'],
    ['with value set, "never" is not special and falls through to the cookie', {header: 'never', cookie: 'always'}, {value: 'beta'}, 'canary', 'cookie'],
    ['header pattern match → canary (unanchored, like PCRE and RE2)', {header: 'x-user-42-y'}, {pattern: /user-\d+/}, 'canary', 'header'],
    ['cookie always → canary', {cookie: 'always'}, undefined, 'canary', 'cookie'],
    ['cookie never → stable', {cookie: 'never'}, undefined, 'stable', 'cookie'],
    ['sticky cookie keeps its version', {sticky: 'h-canary'}, undefined, 'canary', 'sticky'],
    ['no facts → weights', {}, undefined, 'stable', 'weight'],
  ]
  for (const [name, facts, header, version, reason] of table) {
    it(name, () => {
      const choice = chooseVersion({...none, ...facts}, service(header === undefined ? {} : {header}))
      expect(choice).toEqual({version: expect.objectContaining({name: version}), reason})
    })
  }
})

describe('chooseVersion with sticky.precedence afterOverrides (Traefik): header, then cookie, then sticky, then weights', () => {
  const table: [string, Partial<VersionChoiceFacts>, HeaderOverride | undefined, string, string][] = [
    ['header always beats cookie never and a stable sticky cookie', {header: 'always', cookie: 'never', sticky: 'h-stable'}, undefined, 'canary', 'header'],
    ['header never beats a canary sticky cookie', {header: 'never', sticky: 'h-canary'}, undefined, 'stable', 'header'],
    ['header pattern mismatch falls through to sticky', {header: 'admin', sticky: 'h-canary'}, {pattern: /^user-\d+$/}, 'canary', 'sticky'],
    ['cookie never → stable, beating a canary sticky cookie', {cookie: 'never', sticky: 'h-canary'}, undefined, 'stable', 'cookie'],
    ['other cookie values fall through to sticky', {cookie: 'x', sticky: 'h-canary'}, undefined, 'canary', 'sticky'],
    ['unknown sticky value falls through to weights', {sticky: 'gone'}, undefined, 'stable', 'weight'],
  ]
  for (const [name, facts, header, version, reason] of table) {
    it(name, () => {
      const choice = chooseVersion({...none, ...facts}, service({...(header === undefined ? {} : {header}), precedence: 'afterOverrides'}))
      expect(choice).toEqual({version: expect.objectContaining({name: version}), reason})
    })
  }
})

/**
 * Independent models of the two peers, written from their sources rather than from chooseVersion:
 * ingress-nginx's route_to_alternative_balancer (rootfs/etc/nginx/lua/balancer.lua: affinity to
 * the primary or the canary backend first, then canary-by-header with -value/-pattern or
 * always/never, then canary-by-cookie always/never, then weight) and a Traefik IngressRoute as
 * the traefik renderer writes it (header routers at priority 300, cookie routers at 200, then the
 * weighted TraefikService whose sticky cookie is only read there).
 */
type Track = 'stable' | 'canary' | 'weight'
type Mode = {kind: 'always-never'} | {kind: 'value'; value: string} | {kind: 'pattern'; pattern: RegExp}

function headerDecision(header: string | undefined, mode: Mode): Track | undefined {
  if (header === undefined) return undefined
  if (mode.kind === 'value') return header === mode.value ? 'canary' : undefined
  if (mode.kind === 'pattern') return mode.pattern.test(header) ? 'canary' : undefined
  return header === 'always' ? 'canary' : header === 'never' ? 'stable' : undefined
}

function cookieDecision(cookie: string | undefined): Track | undefined {
  return cookie === 'always' ? 'canary' : cookie === 'never' ? 'stable' : undefined
}

function stickyDecision(sticky: string | undefined): Track | undefined {
  return sticky === 'h-stable' ? 'stable' : sticky === 'h-canary' ? 'canary' : undefined
}

function ingressNginxModel(facts: VersionChoiceFacts, mode: Mode): Track {
  return stickyDecision(facts.sticky) ?? headerDecision(facts.header, mode) ?? cookieDecision(facts.cookie) ?? 'weight'
}

function traefikModel(facts: VersionChoiceFacts, mode: Mode): Track {
  return headerDecision(facts.header, mode) ?? cookieDecision(facts.cookie) ?? stickyDecision(facts.sticky) ?? 'weight'
}

describe('chooseVersion agrees with models of ingress-nginx and Traefik on every combination', () => {
  const headers = [undefined, 'always', 'never', 'beta', 'Always', '']
  const cookies = [undefined, 'always', 'never', 'other']
  const stickies = [undefined, 'h-stable', 'h-canary', 'gone']
  const modes: [Mode, HeaderOverride][] = [
    [{kind: 'always-never'}, {}],
    [{kind: 'value', value: 'beta'}, {value: 'beta'}],
    [{kind: 'pattern', pattern: /^(be|al)/}, {pattern: /^(be|al)/}],
  ]
  const peers: [StickyPrecedence, string, typeof ingressNginxModel][] = [
    ['first', 'ingress-nginx', ingressNginxModel],
    ['afterOverrides', 'Traefik', traefikModel],
  ]
  for (const [precedence, peer, model] of peers) {
    it(`precedence ${precedence} matches ${peer} over ${headers.length * cookies.length * stickies.length * modes.length} combinations`, () => {
      let compared = 0
      for (const [mode, rule] of modes) {
        for (const header of headers) {
          for (const cookie of cookies) {
            for (const sticky of stickies) {
              const facts = {header, cookie, sticky}
              const choice = chooseVersion(facts, service({header: rule, precedence}))
              const got: Track = choice?.reason === 'weight' ? 'weight' : (choice?.version.name as Track)
              expect({facts, mode: mode.kind, got}).toEqual({facts, mode: mode.kind, got: model(facts, mode)})
              compared++
            }
          }
        }
      }
      expect(compared).toBe(288)
    })
  }
})

describe('chooseVersion and health', () => {
  it('ignores an override naming an unhealthy version and falls through', () => {
    expect(chooseVersion({...none, header: 'always'}, service({canaryHealthy: false}))).toEqual({version: expect.objectContaining({name: 'stable'}), reason: 'weight'})
  })

  it('ignores a sticky cookie naming an unhealthy version (the caller rewrites it) in both precedences', () => {
    for (const precedence of ['first', 'afterOverrides'] as const) {
      expect(chooseVersion({...none, sticky: 'h-canary'}, service({canaryHealthy: false, precedence}))).toEqual({version: expect.objectContaining({name: 'stable'}), reason: 'weight'})
    }
  })

  it('falls from an unhealthy sticky version to the header when the sticky cookie comes first', () => {
    expect(chooseVersion({...none, sticky: 'h-stable', header: 'always'}, service({stableHealthy: false}))).toEqual({version: expect.objectContaining({name: 'canary'}), reason: 'header'})
  })

  it('returns undefined when no version is healthy', () => {
    expect(chooseVersion(none, service({canaryHealthy: false, stableHealthy: false}))).toBeUndefined()
  })

  it('ignores the header when the service has no header rule', () => {
    const s = {...service(), header: undefined}
    expect(chooseVersion({...none, header: 'always'}, s)?.reason).toBe('weight')
  })
})
