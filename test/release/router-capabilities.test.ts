import {describe, expect, it} from 'vitest'

import {capabilitiesOf} from '../../src/routers/capabilities.js'

// The routers' declared capabilities come from the same table `canary validate` uses, so the
// engine and the validator cannot disagree about what a router can do.
describe('router capabilities derived from the validation table', () => {
  it.each([
    ['nginx', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: false}],
    ['traefik', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: true}],
    ['traefik-v1', {headerMatch: false, headerPattern: false, cookieMatch: false, sticky: true, mirror: false}],
    ['gateway-api', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: false, mirror: true}],
    ['proxy', {headerMatch: true, headerPattern: true, cookieMatch: true, sticky: true, mirror: true}],
  ] as const)('%s', (router, expected) => {
    expect(capabilitiesOf(router)).toEqual(expected)
  })
})
