import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {parseProxyConfig} from '../../src/proxy/config.js'

const ISSUE_EXAMPLE = `listen: 127.0.0.1:8080
admin:
  listen: 127.0.0.1:9901
  token: \${CANARY_ADMIN_TOKEN}
accessLog: { path: ./access.log }          # JSON lines; "-" is stdout
routes:
  - name: stilton
    host: stilton.local
    service: stilton
  - name: cheddar
    host: cheeses.local
    pathPrefix: /cheddar
    stripPrefix: true
    priority: 10
    allow: [127.0.0.1/32, "::1/128"]
    requestHeaders: { X-Custom-Id: test }
    responseHeaders: { X-Served-By: canary }
    service: cheddar
services:
  stilton:
    versions:
      - { name: v1, servers: [http://127.0.0.1:9001] }
  cheddar:
    versions:
      - { name: v1, weight: 80, servers: [http://127.0.0.1:9001, http://127.0.0.1:9003] }
      - { name: v2, weight: 20, servers: [http://127.0.0.1:9002] }
    canary: v2                               # the version that overrides select
    header: { name: X-Canary }               # always | never; \`value:\` exact, \`pattern:\` regex
    cookie: { name: canary }                 # always | never
    sticky: { cookie: cheddar_version }
    mirror: { version: v2, percent: 10 }
`

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigError['problems'] {
  try {
    parseProxyConfig(text, 'p.yaml', env)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return (error as ConfigError).problems
  }
  throw new Error('expected a ConfigError')
}

const MINIMAL = (services: string, extra = '') => `listen: 127.0.0.1:0\n${extra}routes:\n  - { name: r, service: s }\nservices:\n  s:\n${services}`

describe('parseProxyConfig', () => {
  it('accepts the example from issue #3 as written, expanding ${VAR}', () => {
    const config = parseProxyConfig(ISSUE_EXAMPLE, 'p.yaml', {CANARY_ADMIN_TOKEN: 's3cret'})
    expect(config.admin.token).toBe('s3cret')
    expect(config.services.cheddar?.versions.map((v) => v.weight)).toEqual([80, 20])
    expect(config.services.stilton?.versions[0]?.weight).toBe(100)
    expect(config.routes[1]?.allow).toEqual(['127.0.0.1/32', '::1/128'])
    expect(config.services.cheddar?.sticky).toMatchObject({cookie: 'cheddar_version', httpOnly: true, sameSite: 'Lax', path: '/'})
  })

  it('accepts the full example in docs/proxy.md', () => {
    const docs = readFileSync(new URL('../../docs/proxy.md', import.meta.url), 'utf8')
    const example = /```yaml\n([\s\S]*?)```/.exec(docs)?.[1]
    expect(example).toBeDefined()
    const config = parseProxyConfig(example!, 'docs/proxy.md', {CANARY_ADMIN_TOKEN: 't'})
    expect(config.services.cheddar?.healthCheck).toEqual({path: '/healthz', intervalMs: 5000, timeoutMs: 2000})
  })

  it('locates a missing environment variable', () => {
    expect(problemsOf(ISSUE_EXAMPLE)).toEqual([expect.objectContaining({location: {file: 'p.yaml', line: 4, column: 10}, message: 'environment variable CANARY_ADMIN_TOKEN is not set'})])
  })

  it('writes a literal $ for $$', () => {
    const config = parseProxyConfig(MINIMAL('    versions: [{ name: v1, servers: [http://127.0.0.1:1] }]\n', 'admin: { token: "a$${B}" }\n'), 'p.yaml', {})
    expect(config.admin.token).toBe('a${B}')
  })

  it('rejects unknown fields with did-you-mean and file:line:col, listing every problem', () => {
    const problems = problemsOf(`listen: 127.0.0.1:8080
admn: {}
routes:
  - name: a
    service: s
    alow: [10.0.0.0/8]
services:
  s:
    versions:
      - { name: v1, wieght: 80, servers: [http://127.0.0.1:1] }
`)
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({path: 'admn', suggestion: 'Did you mean "admin"?', location: {file: 'p.yaml', line: 2, column: 1}}),
        expect.objectContaining({path: 'routes.0.alow', suggestion: 'Did you mean "allow"?', location: {file: 'p.yaml', line: 6, column: 5}}),
        expect.objectContaining({path: 'services.s.versions.0.wieght', suggestion: 'Did you mean "weight"?'}),
      ]),
    )
    expect(problems).toHaveLength(3)
  })

  it('reports bad values with their path', () => {
    const problems = problemsOf(MINIMAL('    versions: [{ name: v1, weight: -1, servers: [ftp://x] }]\n', 'admin: { listen: nowhere }\n'))
    expect(problems.map((p) => p.path).sort()).toEqual(['admin.listen', 'services.s.versions.0.servers.0', 'services.s.versions.0.weight'])
  })

  it('gives the remainder of 100 to the one version without a weight (Traefik 1.x)', () => {
    const config = parseProxyConfig(MINIMAL('    versions:\n      - { name: v1, servers: [http://127.0.0.1:1] }\n      - { name: v2, weight: 5, servers: [http://127.0.0.1:2] }\n'), 'p.yaml', {})
    expect(config.services.s?.versions.map((v) => v.weight)).toEqual([95, 5])
  })

  it('keeps weight totals other than 100', () => {
    const config = parseProxyConfig(MINIMAL('    versions:\n      - { name: v1, weight: 999, servers: [http://127.0.0.1:1] }\n      - { name: v2, weight: 1, servers: [http://127.0.0.1:2] }\n'), 'p.yaml', {})
    expect(config.services.s?.versions.map((v) => v.weight)).toEqual([999, 1])
  })

  it('refuses two versions without a weight, all-zero weights and a remainder below zero', () => {
    expect(problemsOf(MINIMAL('    versions:\n      - { name: v1, servers: [http://127.0.0.1:1] }\n      - { name: v2, servers: [http://127.0.0.1:2] }\n'))[0]?.message).toMatch(/only one version may omit/)
    expect(problemsOf(MINIMAL('    versions:\n      - { name: v1, weight: 0, servers: [http://127.0.0.1:1] }\n'))[0]?.message).toMatch(/all weights are 0/)
    expect(problemsOf(MINIMAL('    versions:\n      - { name: v1, weight: 120, servers: [http://127.0.0.1:1] }\n      - { name: v2, servers: [http://127.0.0.1:2] }\n'))[0]?.message).toMatch(/no remainder/)
  })

  it('checks references: route service, canary and mirror versions, with suggestions', () => {
    const problems = problemsOf(`listen: 127.0.0.1:0
routes:
  - { name: r, service: chedar }
services:
  cheddar:
    versions:
      - { name: v1, weight: 1, servers: [http://127.0.0.1:1] }
      - { name: v2, weight: 1, servers: [http://127.0.0.1:1] }
    canary: v3
    mirror: { version: v9, percent: 10 }
`)
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({path: 'routes.0.service', suggestion: 'Did you mean "cheddar"?', location: {file: 'p.yaml', line: 3, column: 25}}),
        expect.objectContaining({path: 'services.cheddar.canary', suggestion: expect.stringMatching(/Did you mean "v[12]"/)}),
        expect.objectContaining({path: 'services.cheddar.mirror.version'}),
      ]),
    )
  })

  it('reports broken references together with schema problems', () => {
    const problems = problemsOf(`listen: 127.0.0.1:0
routes:
  - { name: r, service: chedar, prio: 1 }
services:
  cheddar:
    versions:
      - { name: v1, weight: 1, servers: [http://127.0.0.1:1] }
    canary: v9
`)
    expect(problems.map((p) => p.path).sort()).toEqual(['routes.0.prio', 'routes.0.service', 'services.cheddar.canary'])
  })

  it('refuses a non-loopback admin listener without a token', () => {
    expect(problemsOf(MINIMAL('    versions: [{ name: v1, servers: [http://127.0.0.1:1] }]\n', 'admin: { listen: 0.0.0.0:9901 }\n'))).toEqual([expect.objectContaining({path: 'admin.token'})])
  })

  it('validates CIDRs, path patterns and regexes', () => {
    const problems = problemsOf(`listen: 127.0.0.1:0
routes:
  - { name: r, service: s, allow: [10.0.0.0/33], path: "/a/{id:[0-9}" }
services:
  s:
    versions: [{ name: v1, servers: [http://127.0.0.1:1] }]
    canary: v1
    header: { name: X-Canary, pattern: "(" }
`)
    expect(problems.map((p) => p.path).sort()).toEqual(['routes.0.allow.0', 'services.s.header.pattern'])
  })

  it('reports YAML syntax errors with a location', () => {
    expect(problemsOf('listen: [\n')[0]).toMatchObject({location: {file: 'p.yaml', line: 2}})
  })
})
