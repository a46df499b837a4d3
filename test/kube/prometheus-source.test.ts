/**
 * The Prometheus MetricSource against a fake Prometheus HTTP API that checks the queries it
 * receives, and the generated PromQL against the real promtool: syntax (`check rules`) and values
 * on synthetic series (`test rules`, Prometheus's own evaluation engine).
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {ConfigError, UnreachableError} from '../../src/errors.js'
import {ROUTERS} from '../../src/routers/index.js'
import type {QueryContext} from '../../src/routers/router-definition.js'
import {PrometheusSource} from '../../src/targets/kubernetes/prometheus-source.js'
import {testRelease} from './release-fixture.js'

const signal = new AbortController().signal

interface FakePrometheus {
  url: string
  queries: Array<{query: string; time: string}>
  answer: (query: string) => {status: number; body: unknown}
  close(): Promise<void>
}

async function startFakePrometheus(): Promise<FakePrometheus> {
  const fake: FakePrometheus = {url: '', queries: [], answer: () => ({status: 200, body: vector([])}), close: async () => undefined}
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://prometheus')
    if (url.pathname !== '/api/v1/query') {
      response.writeHead(404).end()
      return
    }
    const query = url.searchParams.get('query') ?? ''
    fake.queries.push({query, time: url.searchParams.get('time') ?? ''})
    const {status, body} = fake.answer(query)
    response.writeHead(status, {'content-type': 'application/json'}).end(JSON.stringify(body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  fake.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
  return fake
}

function vector(samples: Array<{metric?: Record<string, string>; value: number}>): unknown {
  return {status: 'success', data: {resultType: 'vector', result: samples.map((s) => ({metric: s.metric ?? {}, value: [1700000000, String(s.value)]}))}}
}

let prometheus: FakePrometheus

beforeEach(async () => {
  prometheus = await startFakePrometheus()
})

afterEach(async () => {
  await prometheus.close()
})

describe('PrometheusSource with ingress-nginx', () => {
  it('queries per track by the canary label and reads requests, 5xx and the latency histogram', async () => {
    prometheus.answer = (query) => {
      const canary = query.includes('canary!=""')
      if (query.includes('_bucket')) {
        return {status: 200, body: vector([{metric: {le: '0.1'}, value: canary ? 80 : 900}, {metric: {le: '+Inf'}, value: canary ? 100 : 1000}, {metric: {le: '0.5'}, value: canary ? 99 : 990}])}
      }
      if (query.includes('status=~"5.."')) return {status: 200, body: vector([{value: canary ? 3 : 1}])}
      return {status: 200, body: vector([{value: canary ? 100 : 1000}])}
    }
    const source = new PrometheusSource(testRelease({router: 'nginx', prometheusUrl: prometheus.url}))
    const metrics = await source.read({sinceMs: 1_700_000_000_000, untilMs: 1_700_000_060_000}, signal)
    expect(metrics.canary).toEqual({requests: 100, errors: 3, latency: [{leSeconds: 0.1, count: 80}, {leSeconds: 0.5, count: 99}, {leSeconds: Infinity, count: 100}]})
    expect(metrics.stable.requests).toBe(1000)
    expect(prometheus.queries.map((q) => q.time)).toContain('1700000060.000')
    expect(prometheus.queries.map((q) => q.query)).toContain('sum(increase(nginx_ingress_controller_requests{namespace="shop",ingress="web",canary!=""}[60s]))')
    expect(prometheus.queries.map((q) => q.query)).toContain('sum(increase(nginx_ingress_controller_requests{namespace="shop",ingress="web",canary=""}[60s]))')
    expect(prometheus.queries.every((q) => !/_sum|_count/.test(q.query))).toBe(true)
  })

  it('no series yet means no requests, never a failure', async () => {
    const metrics = await new PrometheusSource(testRelease({router: 'nginx', prometheusUrl: prometheus.url})).read({sinceMs: 0, untilMs: 30_000}, signal)
    expect(metrics.canary).toEqual({requests: 0, errors: 0, latency: []})
  })

  it('fills placeholders in user PromQL', async () => {
    const release = testRelease({router: 'nginx', prometheusUrl: prometheus.url, prometheusQueries: `{requests: 'sum(increase(my_requests{ns="{{namespace}}",svc="{{service}}"}[{{interval}}]))'}`})
    await new PrometheusSource(release).read({sinceMs: 0, untilMs: 30_000}, signal)
    expect(prometheus.queries.map((q) => q.query)).toContain('sum(increase(my_requests{ns="shop",svc="web-canary"}[30s]))')
  })

  it('an unknown placeholder is a ConfigError naming it', async () => {
    const release = testRelease({router: 'nginx', prometheusUrl: prometheus.url, prometheusQueries: `{requests: 'up{x="{{nope}}"}'}`})
    await expect(new PrometheusSource(release).read({sinceMs: 0, untilMs: 30_000}, signal)).rejects.toThrow(/unknown placeholder \{\{nope\}\}/)
  })

  it('a query Prometheus rejects is a ConfigError; an unreachable Prometheus exits 6', async () => {
    prometheus.answer = () => ({status: 400, body: {status: 'error', errorType: 'bad_data', error: 'parse error at char 5'}})
    const error = await new PrometheusSource(testRelease({router: 'nginx', prometheusUrl: prometheus.url})).read({sinceMs: 0, untilMs: 30_000}, signal).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    await prometheus.close()
    const down = await new PrometheusSource(testRelease({router: 'nginx', prometheusUrl: prometheus.url})).read({sinceMs: 0, untilMs: 30_000}, signal).catch((e: unknown) => e)
    expect(down).toBeInstanceOf(UnreachableError)
    prometheus.close = async () => undefined
  })
})

describe('routers without built-in queries', () => {
  it('Traefik 1.x and Gateway API need user PromQL for requests and successRate (exit 3 naming the fields)', () => {
    for (const router of ['traefik-v1', 'gateway-api']) {
      let error: unknown
      try {
        new PrometheusSource(testRelease({router, prometheusUrl: prometheus.url}))
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).problems.map((p) => p.path)).toEqual(['spec.analysis.prometheus.queries.requests', 'spec.analysis.prometheus.queries.successRate'])
    }
  })

  it('with user queries, errors come from the success rate and no latency is invented', async () => {
    prometheus.answer = (query) => ({status: 200, body: vector([{value: query.startsWith('rate_ok') ? 0.98 : 200}])})
    const release = testRelease({router: 'traefik-v1', prometheusUrl: prometheus.url, prometheusQueries: `{requests: 'reqs{svc="{{service}}"}', successRate: 'rate_ok{svc="{{service}}"}'}`})
    const metrics = await new PrometheusSource(release).read({sinceMs: 0, untilMs: 30_000}, signal)
    expect(metrics.canary).toEqual({requests: 200, errors: 4, latency: []})
  })
})

describe('PrometheusSource with the bundled proxy scraped by Prometheus', () => {
  it('uses canary_proxy_* by service and version', async () => {
    await new PrometheusSource(testRelease({router: 'proxy', prometheusUrl: prometheus.url})).read({sinceMs: 0, untilMs: 30_000}, signal)
    expect(prometheus.queries.map((q) => q.query)).toContain('sum(increase(canary_proxy_requests_total{service="web",version="canary"}[30s]))')
  })
})

describe('PrometheusSource with Traefik', () => {
  it('selects the track Service by Traefik\'s backend name', async () => {
    await new PrometheusSource(testRelease({router: 'traefik', prometheusUrl: prometheus.url})).read({sinceMs: 0, untilMs: 30_000}, signal)
    expect(prometheus.queries.map((q) => q.query)).toContain('sum(increase(traefik_service_requests_total{service=~"shop-web-canary-8080@kubernetes.*"}[30s]))')
  })
})

const context = (track: 'stable' | 'canary'): QueryContext => ({namespace: 'shop', name: 'web', track, service: track === 'stable' ? 'web' : 'web-canary', ingress: 'web', port: 8080, interval: '5m'})
const hasPromtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0

describe.skipIf(!hasPromtool)('generated PromQL, checked by promtool', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'canary-promtool-'))
  })
  afterEach(() => {
    rmSync(dir, {recursive: true, force: true})
  })

  it('every built-in query parses (promtool check rules)', () => {
    const rules = (['nginx', 'traefik', 'proxy'] as const).flatMap((router) => (['stable', 'canary'] as const).flatMap((track) => Object.entries(ROUTERS[router].builtInQueries(context(track))).map(([name, expr], i) => ({record: `canary:${router}_${track}_${name}_${i}`, expr}))))
    writeFileSync(join(dir, 'rules.yml'), stringify({groups: [{name: 'canary', rules}]}))
    const result = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], {encoding: 'utf8'})
    expect(result.stderr + result.stdout).toContain('SUCCESS')
    expect(result.status).toBe(0)
  })

  it('on synthetic ingress-nginx series the queries give the counts and the real p99 (promtool test rules)', () => {
    const canaryQ = ROUTERS.nginx.builtInQueries(context('canary'))
    const stableQ = ROUTERS.nginx.builtInQueries(context('stable'))
    const base = 'namespace="shop",ingress="web"'
    // 10 minutes at one sample a minute: canary serves 10 req/min (1 of them 5xx), stable 90 req/min.
    // Canary latency: 9 of 10 requests ≤ 0.1 s, the 10th ≤ 1 s; so its p99 lies in (0.1, 1].
    const input = [
      {series: `nginx_ingress_controller_requests{${base},canary="shop-web-canary-8080",status="200"}`, values: '0+9x10'},
      {series: `nginx_ingress_controller_requests{${base},canary="shop-web-canary-8080",status="503"}`, values: '0+1x10'},
      {series: `nginx_ingress_controller_requests{${base},canary="",status="200"}`, values: '0+90x10'},
      {series: `nginx_ingress_controller_response_duration_seconds_bucket{${base},canary="shop-web-canary-8080",le="0.1"}`, values: '0+9x10'},
      {series: `nginx_ingress_controller_response_duration_seconds_bucket{${base},canary="shop-web-canary-8080",le="1"}`, values: '0+10x10'},
      {series: `nginx_ingress_controller_response_duration_seconds_bucket{${base},canary="shop-web-canary-8080",le="+Inf"}`, values: '0+10x10'},
    ]
    const tests = [{
      interval: '1m',
      input_series: input,
      promql_expr_test: [
        {expr: canaryQ.requests, eval_time: '10m', exp_samples: [{labels: '{}', value: 50}]},
        {expr: canaryQ.errors, eval_time: '10m', exp_samples: [{labels: '{}', value: 5}]},
        {expr: stableQ.requests, eval_time: '10m', exp_samples: [{labels: '{}', value: 450}]},
        // histogram_quantile interpolates inside (0.1, 1]: 0.1 + 0.9 * (0.99*10 - 9) / 1 = 0.91.
        {expr: `round(${canaryQ.latencyP99}, 0.001)`, eval_time: '10m', exp_samples: [{labels: '{}', value: 0.91}]},
      ],
    }]
    writeFileSync(join(dir, 'rules.yml'), stringify({groups: []}))
    writeFileSync(join(dir, 'test.yml'), stringify({rule_files: ['rules.yml'], evaluation_interval: '1m', tests}))
    const result = spawnSync('promtool', ['test', 'rules', join(dir, 'test.yml')], {encoding: 'utf8', cwd: dir})
    expect(result.stdout + result.stderr).toContain('SUCCESS')
    expect(result.status).toBe(0)
  })
})
