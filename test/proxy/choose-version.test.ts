import {describe, expect, it} from 'vitest'

import {chooseVersion, type ChoosableService, type HeaderOverride, type VersionChoiceFacts} from '../../src/proxy/choose-version.js'

interface V {
  name: string
  healthy: boolean
}

function service(options: {header?: HeaderOverride; canaryHealthy?: boolean; stableHealthy?: boolean} = {}): ChoosableService<V> {
  const stable = {name: 'stable', healthy: options.stableHealthy ?? true}
  const canary = {name: 'canary', healthy: options.canaryHealthy ?? true}
  return {
    canary,
    stable,
    header: options.header ?? {},
    stickyVersion: (value) => (value === 'h-stable' ? stable : value === 'h-canary' ? canary : undefined),
    // The weighted pick is a fixed sentinel so the table shows when weights decided.
    pickByWeight: () => (stable.healthy ? stable : canary.healthy ? canary : undefined),
  }
}

const none: VersionChoiceFacts = {header: undefined, cookie: undefined, sticky: undefined}

describe('chooseVersion precedence: header, then cookie, then sticky, then weights', () => {
  const table: [string, Partial<VersionChoiceFacts>, HeaderOverride | undefined, string, string][] = [
    ['header always → canary', {header: 'always'}, undefined, 'canary', 'header'],
    ['header never → stable, even with cookie always', {header: 'never', cookie: 'always'}, undefined, 'stable', 'header'],
    ['header always beats cookie never and a stable sticky cookie', {header: 'always', cookie: 'never', sticky: 'h-stable'}, undefined, 'canary', 'header'],
    ['other header values fall through to the cookie', {header: 'maybe', cookie: 'always'}, undefined, 'canary', 'cookie'],
    ['header value match → canary', {header: 'beta'}, {value: 'beta'}, 'canary', 'header'],
    ['with value set, "always" does not match and falls through', {header: 'always'}, {value: 'beta'}, 'stable', 'weight'],
    ['header pattern match → canary', {header: 'user-42'}, {pattern: /^user-\d+$/}, 'canary', 'header'],
    ['header pattern mismatch falls through to sticky', {header: 'admin', sticky: 'h-canary'}, {pattern: /^user-\d+$/}, 'canary', 'sticky'],
    ['cookie always → canary', {cookie: 'always'}, undefined, 'canary', 'cookie'],
    ['cookie never → stable, beating a canary sticky cookie', {cookie: 'never', sticky: 'h-canary'}, undefined, 'stable', 'cookie'],
    ['other cookie values fall through to sticky', {cookie: 'x', sticky: 'h-canary'}, undefined, 'canary', 'sticky'],
    ['sticky cookie keeps its version', {sticky: 'h-canary'}, undefined, 'canary', 'sticky'],
    ['unknown sticky value falls through to weights', {sticky: 'gone'}, undefined, 'stable', 'weight'],
    ['no facts → weights', {}, undefined, 'stable', 'weight'],
  ]
  for (const [name, facts, header, version, reason] of table) {
    it(name, () => {
      const choice = chooseVersion({...none, ...facts}, service(header === undefined ? {} : {header}))
      expect(choice).toEqual({version: expect.objectContaining({name: version}), reason})
    })
  }

  it('ignores an override naming an unhealthy version and falls through', () => {
    expect(chooseVersion({...none, header: 'always'}, service({canaryHealthy: false}))).toEqual({version: expect.objectContaining({name: 'stable'}), reason: 'weight'})
  })

  it('ignores a sticky cookie naming an unhealthy version (the caller rewrites it)', () => {
    expect(chooseVersion({...none, sticky: 'h-canary'}, service({canaryHealthy: false}))).toEqual({version: expect.objectContaining({name: 'stable'}), reason: 'weight'})
  })

  it('returns undefined when no version is healthy', () => {
    expect(chooseVersion(none, service({canaryHealthy: false, stableHealthy: false}))).toBeUndefined()
  })

  it('ignores the header when the service has no header rule', () => {
    const s = {...service(), header: undefined}
    expect(chooseVersion({...none, header: 'always'}, s)?.reason).toBe('weight')
  })
})
