import {describe, expect, it} from 'vitest'

import {renderAllSteps} from '../../src/render/render-release.js'
import {parseRelease} from '../../src/release/load-release.js'
import {ROUTER_KINDS} from '../../src/release/release.js'
import {starterSpec} from '../../src/release/starter.js'

describe('the starter spec canary init writes', () => {
  for (const router of ROUTER_KINDS) {
    it(`validates and renders every step for router ${router}`, async () => {
      const loaded = parseRelease(starterSpec('shop-api', router), 'canary.yaml')
      expect(loaded.release.ingress?.router).toBe(router)
      const steps = await renderAllSteps(loaded, {image: 'v2'})
      expect(steps.at(-1)?.state.weights.canary).toBe(100)
    })
  }

  it('leaves out what the router cannot do instead of failing validation', () => {
    expect(starterSpec('web', 'traefik-v1')).not.toContain('match:')
    expect(starterSpec('web', 'gateway-api')).not.toContain('sticky:')
    expect(starterSpec('web', 'nginx')).toContain('header: { name: X-Canary, value: always }')
  })
})
