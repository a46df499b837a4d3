import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {ConfigError, NotFoundError, type ConfigProblem} from '../../src/errors.js'
import {loadRelease, parseRelease} from '../../src/release/load-release.js'

const EXAMPLE = join(import.meta.dirname, '../../examples/my-app.yaml')
const exampleText = readFileSync(EXAMPLE, 'utf8')

/** The problems parseRelease reports for `text` (fails the test if it parses). */
function problemsOf(text: string): ConfigProblem[] {
  try {
    parseRelease(text, 'spec.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return [...(error as ConfigError).problems]
  }
  throw new Error('expected a ConfigError')
}

/** The example with one line replaced. */
function exampleWith(search: string, replacement: string): string {
  expect(exampleText).toContain(search)
  return exampleText.replace(search, replacement)
}

const where = (p: ConfigProblem) => `${p.location?.line}:${p.location?.column} ${p.path}`

describe('parseRelease accepts the issue example as written', () => {
  it('normalizes it into a typed Release', async () => {
    const {release} = await loadRelease(EXAMPLE)
    expect(release.name).toBe('my-app')
    expect(release.namespace).toBe('shop')
    expect(release.image).toMatchObject({repository: 'ghcr.io/acme/my-app', tag: 'v1'})
    expect(release.steps).toEqual([
      {kind: 'setWeight', weight: 20},
      {kind: 'pause', durationMs: 120_000},
      {kind: 'setWeight', weight: 50},
      {kind: 'pause'},
      {kind: 'setWeight', weight: 100},
    ])
    expect(release.totalWeight).toBe(100)
    expect(release.match).toEqual({header: {kind: 'always-never', name: 'X-Canary'}, cookie: {name: 'canary'}})
    expect(release.analysis).toMatchObject({intervalMs: 30_000, minRequests: 200, successRatePercent: 99.5, latencyP99Ms: 500, failureLimit: 2, errorTolerance: {ratio: 1.5, points: 0.1}, latencyTolerance: {ratio: 1.5, points: 0.5}, maxFalsePositiveRate: 0.01, maxFalsePassRate: 0.05, deadlineMs: 1_800_000, onInconclusive: 'abort'})
    expect(release.target).toBe('kubernetes')
    expect(Object.isFrozen(release.steps)).toBe(true)
  })

  it('reads the [20, 50, 100] shorthand as setWeight steps', () => {
    const {release} = parseRelease(exampleText.replace(/ {2}steps:[\s\S]*?setWeight: 100\n/, '  steps: [20, 50, 100]\n'), 'spec.yaml')
    expect(release.steps).toEqual([20, 50, 100].map((weight) => ({kind: 'setWeight', weight})))
  })

  it('accepts a finer total for sub-percent steps', () => {
    const {release} = parseRelease(exampleText.replace(/ {2}steps:[\s\S]*?setWeight: 100\n/, '  totalWeight: 1000\n  steps: [1, 10, 1000]\n'), 'spec.yaml')
    expect(release.totalWeight).toBe(1000)
    expect(release.steps.at(0)).toEqual({kind: 'setWeight', weight: 1})
  })

  it('reads header value, pattern and always/never as three kinds', () => {
    const header = (line: string) => parseRelease(exampleWith('header: { name: X-Canary, value: always }', line), 'spec.yaml').release.match?.header
    expect(header('header: { name: X-Canary }')).toEqual({kind: 'always-never', name: 'X-Canary'})
    expect(header('header: { name: X-Canary, value: "yes: please" }')).toEqual({kind: 'exact', name: 'X-Canary', value: 'yes: please'})
    expect(header('header: { name: X-Canary, pattern: "^b(eta|1)$" }')).toEqual({kind: 'pattern', name: 'X-Canary', pattern: '^b(eta|1)$'})
  })

  it('defaults the target to local when spec.local is present', () => {
    const {release} = parseRelease(exampleWith('  analysis:', '  local: { upstreams: { v1: [http://127.0.0.1:9001], v2: [http://127.0.0.1:9002] } }\n  analysis:'), 'spec.yaml')
    expect(release.target).toBe('local')
    expect(release.local).toEqual({upstreams: {v1: ['http://127.0.0.1:9001'], v2: ['http://127.0.0.1:9002']}, listen: '127.0.0.1:8080', readyTimeoutMs: 60_000})
  })

  it('records where every field is, for problems found later', () => {
    const loaded = parseRelease(exampleText, 'spec.yaml')
    expect(loaded.locations.get('spec.mirror')).toBeUndefined()
    expect(loaded.locations.get('spec.sticky')).toEqual({file: 'spec.yaml', line: 27, column: 11})
  })
})

describe('parseRelease reports each bad input with position, field, expectation and suggestion', () => {
  const cases: Array<{name: string; text: string; at: string; message: RegExp; suggestion?: RegExp}> = [
    {name: 'broken YAML', text: exampleWith('port: 8080', 'port: [8080'), at: '10:3 ', message: /YAML syntax error/},
    {name: 'an unknown field, with did-you-mean', text: exampleWith('replicas: 4', 'replica: 4'), at: '8:3 spec.replica', message: /unknown field "replica": expected one of image, replicas/, suggestion: /did you mean "replicas"/},
    {name: 'a wrong type', text: exampleWith('replicas: 4', 'replicas: four'), at: '8:13 spec.replicas', message: /expected a whole number of replicas, got string "four"/},
    {name: 'a weight below 0', text: exampleWith('setWeight: 20', 'setWeight: -5'), at: '19:18 spec.steps.0.setWeight', message: /weight -5 is out of range: expected 0 to 100/},
    {name: 'a weight above the total', text: exampleWith('setWeight: 50', 'setWeight: 150'), at: '21:18 spec.steps.2.setWeight', message: /weight 150 is out of range: expected 0 to 100/},
    {name: 'a plan whose last weight is not the total', text: exampleWith('setWeight: 100', 'setWeight: 80'), at: '23:7 spec.steps.4', message: /last weight is 80: expected the plan to end at the total weight 100/, suggestion: /setWeight: 100/},
    {name: 'a duration that does not parse', text: exampleWith('duration: 2m', 'duration: 2 minutes'), at: '20:26 spec.steps.1.pause.duration', message: /expected a duration such as 30s/},
    {name: 'an analysis duration that does not parse', text: exampleWith('interval: 30s', 'interval: 30'), at: '29:15 spec.analysis.interval', message: /expected a duration/},
    {name: 'a name that is not a DNS-1123 label', text: exampleWith('name: my-app', 'name: My_App'), at: '4:9 metadata.name', message: /"My_App" is not a valid DNS-1123 label/},
    {name: 'a namespace that is not a DNS-1123 label', text: exampleWith('namespace: shop', 'namespace: shop.eu'), at: '5:14 metadata.namespace', message: /"shop.eu" is not a valid DNS-1123 label/},
    {name: 'an invalid image reference', text: exampleWith('image: ghcr.io/acme/my-app:v1', 'image: ghcr.io/acme/my-app:v1:v2'), at: '7:10 spec.image', message: /image reference .* has an invalid/},
    {name: 'an unknown router, with did-you-mean', text: exampleWith('router: nginx ', 'router: ngnix '), at: '17:13 spec.ingress.router', message: /expected one of nginx, traefik, traefik-v1, traefik-file, gateway-api, proxy, got string "ngnix"/, suggestion: /did you mean "nginx"/},
    {name: 'a header match without a name', text: exampleWith('header: { name: X-Canary, value: always }', 'header: { value: always }'), at: '25:13 spec.match.header', message: /header match without a name/},
    {name: 'a regex pattern that does not compile', text: exampleWith('header: { name: X-Canary, value: always }', 'header: { name: X-Canary, pattern: "(v2" }'), at: '25:40 spec.match.header.pattern', message: /regular expression does not compile/, suggestion: /PCRE/},
    {name: 'duplicate keys', text: exampleWith('  port: 8080\n', '  port: 8080\n  port: 9090\n'), at: '10:3 ', message: /duplicate key "port"/},
    {name: 'an empty file', text: '\n# nothing here\n', at: '1:1 ', message: /the file is empty/, suggestion: /canary init/},
    {name: 'a file that is not a Release', text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n', at: '2:7 kind', message: /this is not a Release/},
    {name: 'a list instead of a document', text: '- a\n- b\n', at: '1:1 ', message: /expected a Release document/},
    {name: 'a mirror percentage on ingress-nginx', text: exampleWith('  analysis:', '  mirror: { percent: 10 }\n  analysis:'), at: '28:11 spec.mirror', message: /router nginx cannot do percentage mirroring: ingress-nginx can only mirror every request/, suggestion: /traefik/},
    {name: 'header and cookie match on Traefik 1.x', text: exampleWith('router: nginx ', 'router: traefik-v1 '), at: '25:13 spec.match.header', message: /router traefik-v1 cannot do header match/},
    {name: 'stickiness on Gateway API', text: exampleWith('router: nginx ', 'router: gateway-api\n    gateway: { name: gw } '), at: '28:11 spec.sticky', message: /router gateway-api cannot do sticky sessions/},
    {name: 'both value and pattern', text: exampleWith('value: always', 'value: beta, pattern: "^b"'), at: '25:53 spec.match.header.pattern', message: /both value and pattern/},
    {name: 'the reserved value never', text: exampleWith('value: always', 'value: never'), at: '25:38 spec.match.header.value', message: /"never" is reserved/},
    {name: 'an unknown step field, with did-you-mean', text: exampleWith('setWeight: 50', 'setWieght: 50'), at: '21:7 spec.steps.2.setWieght', message: /unknown step field/, suggestion: /did you mean "setWeight"/},
    {name: 'a backtick in a header value for Traefik', text: exampleWith('router: nginx ', 'router: traefik ').replace('value: always', 'value: "a`) || Host(`evil"'), at: '25:13 spec.match.header', message: /backtick/},
    {name: 'double braces in a header value for the Traefik file provider', text: exampleWith('router: nginx ', 'router: traefik-file ').replace('value: always', 'value: "{{ env `HOME` }}"'), at: '25:13 spec.match.header', message: /Go template/},
    {name: 'a Traefik 1.x weight that needs more than 3 decimals', text: exampleText.replace('router: nginx ', 'router: traefik-v1 ').replace(/ {2}match:[\s\S]*?cookie: canary\n/, '').replace(/ {2}steps:[\s\S]*?setWeight: 100\n/, '  totalWeight: 3\n  steps: [1, 3]\n'), at: '18:16 spec.totalWeight', message: /router traefik-v1 cannot express weight 1\/3/},
    {name: 'an ingress-nginx total below 100 that does not divide it', text: exampleText.replace(/ {2}steps:[\s\S]*?setWeight: 100\n/, '  totalWeight: 30\n  steps: [10, 30]\n'), at: '18:16 spec.totalWeight', message: /ingress-nginx ignores canary-weight-total below 100/},
    {name: 'a tolerance ratio below 1', text: exampleWith('errorRate: { ratio: 1.5, points: 0.1 }', 'errorRate: { ratio: 0.9, points: 0.1 }'), at: '35:27 spec.analysis.tolerance.errorRate.ratio', message: /expected a ratio of at least 1: below 1 even a canary exactly like stable would fail/},
    {name: 'tolerance points above 100', text: exampleWith('latency: { ratio: 1.5, points: 0.5 }', 'latency: { ratio: 1.5, points: 150 }'), at: '36:38 spec.analysis.tolerance.latency.points', message: /expected percentage points from 0 to 100/},
    {name: 'tolerance points that are not a number', text: exampleWith('latency: { ratio: 1.5, points: 0.5 }', 'latency: { ratio: 1.5, points: half }'), at: '36:38 spec.analysis.tolerance.latency.points', message: /expected percentage points such as 0.1/},
    {name: 'a negative per-minute allowance', text: exampleWith('errorRate: { ratio: 1.5, points: 0.1 }', 'errorRate: { ratio: 1.5, perMinute: -1 }'), at: '35:43 spec.analysis.tolerance.errorRate.perMinute', message: /expected events per minute from 0 to 1000000/},
    {name: 'a per-minute allowance that is not a number', text: exampleWith('latency: { ratio: 1.5, points: 0.5 }', 'latency: { ratio: 1.5, perMinute: lots }'), at: '36:41 spec.analysis.tolerance.latency.perMinute', message: /expected extra events per minute at full traffic, such as 6/},
    {name: 'a misspelt per-minute allowance, with did-you-mean', text: exampleWith('errorRate: { ratio: 1.5, points: 0.1 }', 'errorRate: { ratio: 1.5, perMinut: 5 }'), at: '35:32 spec.analysis.tolerance.errorRate.perMinut', message: /unknown field "perMinut"/, suggestion: /did you mean "perMinute"/},
    {name: 'an unknown tolerance, with did-you-mean', text: exampleWith('errorRate: { ratio', 'errorRates: { ratio'), at: '35:7 spec.analysis.tolerance.errorRates', message: /unknown field "errorRates"/, suggestion: /did you mean "errorRate"/},
    {name: 'an unknown onInconclusive action', text: exampleWith('onInconclusive: abort', 'onInconclusive: promote'), at: '40:21 spec.analysis.onInconclusive', message: /expected one of abort, hold, got string "promote"/},
    {name: 'a requests deadline of 0', text: exampleWith('onInconclusive: abort', 'onInconclusive: abort\n    deadlineRequests: 0'), at: '41:23 spec.analysis.deadlineRequests', message: /expected at least 1 canary request/},
    {name: 'a false pass rate of 1 or more', text: exampleWith('maxFalsePassRate: 0.05', 'maxFalsePassRate: 1.5'), at: '38:23 spec.analysis.maxFalsePassRate', message: /expected a rate between 0 and 1, e.g. 0.05/},
    {name: 'a local target with both command and upstreams', text: exampleWith('  analysis:', '  local: { command: "node app.js", upstreams: { v1: [http://127.0.0.1:1] } }\n  analysis:'), at: '28:10 spec.local', message: /exactly one of command/},
  ]
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      const problems = problemsOf(c.text)
      const match = problems.find((p) => c.message.test(p.message))
      expect(match, `problems: ${JSON.stringify(problems, null, 1)}`).toBeDefined()
      expect(where(match!)).toBe(c.at)
      expect(match!.location?.file).toBe('spec.yaml')
      if (c.suggestion !== undefined) expect(match!.suggestion).toMatch(c.suggestion)
    })
  }

  it('fills the judge\'s defaults when the spec leaves them out, and reads a requests deadline and hold', () => {
    const bare = exampleText.replace(/ {4}tolerance:[\s\S]*$/, '')
    expect(parseRelease(bare, 'spec.yaml').release.analysis).toMatchObject({errorTolerance: {ratio: 1.5, points: 0.1, perMinute: 5}, latencyTolerance: {ratio: 1.5, points: 0.5, perMinute: 30}, maxFalsePositiveRate: 0.01, maxFalsePassRate: 0.05, onInconclusive: 'abort'})
    expect(parseRelease(bare, 'spec.yaml').release.analysis.deadlineMs).toBeUndefined()
    const custom = parseRelease(`${bare}    tolerance: { errorRate: { ratio: 2 } }\n    deadlineRequests: 50000\n    onInconclusive: hold\n`, 'spec.yaml').release.analysis
    expect(custom).toMatchObject({errorTolerance: {ratio: 2, points: 0.1, perMinute: 5}, deadlineRequests: 50_000, onInconclusive: 'hold'})
  })

  it.each([
    ['{ ratio: 1.5, points: 0.1 }', {ratio: 1.5, points: 0.1, perMinute: 0}],
    ['{ points: 2 }', {ratio: 1.5, points: 2, perMinute: 0}],
    ['{ ratio: 3 }', {ratio: 3, points: 0.1, perMinute: 5}],
    ['{ perMinute: 12 }', {ratio: 1.5, points: 0.1, perMinute: 12}],
    ['{ points: 0, perMinute: 0 }', {ratio: 1.5, points: 0, perMinute: 0}],
    ['{}', {ratio: 1.5, points: 0.1, perMinute: 5}],
  ])('keeps a tolerance stated in points as it was written (no per-minute allowance added): errorRate %s', (stated, expected) => {
    const bare = exampleText.replace(/ {4}tolerance:[\s\S]*$/, '')
    expect(parseRelease(`${bare}    tolerance: { errorRate: ${stated} }\n`, 'spec.yaml').release.analysis.errorTolerance).toEqual(expected)
  })

  it('reports every problem at once, in file order', () => {
    const text = exampleWith('name: my-app', 'name: My_App').replace('replicas: 4', 'replica: 4').replace('router: nginx ', 'router: ngnix ').replace('interval: 30s', 'interval: soon')
    expect(problemsOf(text).map((p) => p.path)).toEqual(['metadata.name', 'spec.replica', 'spec.ingress.router', 'spec.analysis.interval'])
  })

  it('throws NotFoundError (exit 4) for a missing file', async () => {
    await expect(loadRelease('/nonexistent/canary.yaml')).rejects.toBeInstanceOf(NotFoundError)
  })

  it('limits the release name so derived names stay 63-character labels', () => {
    const problems = problemsOf(exampleWith('name: my-app', `name: ${'a'.repeat(55)}`))
    expect(problems[0]?.message).toMatch(/too long: expected at most 50/)
  })
})
