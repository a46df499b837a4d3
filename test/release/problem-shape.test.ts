import {describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {parseRelease} from '../../src/release/load-release.js'

// `--json` prints ConfigError.problems as they are: pipelines parse them, so every problem —
// schema, cross-field or router capability — has exactly the documented keys.
const SPEC = `apiVersion: canary.dev/v1alpha1
kind: Release
metadata:
  name: shop
spec:
  image: ghcr.io/acme/shop:v1
  replicas: 2
  port: 8080
  steps: [20, 50, 100]
  match:
    header: { value: always }
  mirror: { percent: 10 }
`

describe('config problems in --json', () => {
  it('have only location, path, message and suggestion, whatever check produced them', () => {
    let error: unknown
    try {
      parseRelease(SPEC, 'shop.yaml')
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    const problems = (error as ConfigError).toJSON().problems ?? []
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining(['spec', 'spec.match.header']))
    for (const problem of problems) {
      expect(Object.keys(problem).filter((k) => !['location', 'path', 'message', 'suggestion'].includes(k)), problem.path).toEqual([])
      expect(problem.location?.file).toBe('shop.yaml')
    }
  })
})
