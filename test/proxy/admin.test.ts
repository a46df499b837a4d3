import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Registry} from 'prom-client'
import {afterEach, describe, expect, it} from 'vitest'

import {ConfigError} from '../../src/errors.js'
import {loadProxyConfig} from '../../src/proxy/config.js'
import {startProxy} from '../../src/proxy/server.js'
import {config, eventually, get, start, startUpstream, type Upstream} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

const TOKEN = 'test-token'
const auth = {authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json'}

function yaml(v1: Upstream, v2: Upstream, weights = [80, 20], extra = ''): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, token: "\${TOKEN}" }
${extra}routes: [{ name: r, service: s }]
services:
  s:
    versions:
      - { name: v1, weight: ${weights[0]}, servers: [${v1.url}] }
      - { name: v2, weight: ${weights[1]}, servers: [${v2.url}] }
    canary: v2
`
}

async function setup(extra = '') {
  const v1 = await startUpstream('v1')
  const v2 = await startUpstream('v2')
  const dir = mkdtempSync(join(tmpdir(), 'canary-admin-'))
  const file = join(dir, 'proxy.yaml')
  writeFileSync(file, yaml(v1, v2, [80, 20], extra))
  const proxy = await start(await loadProxyConfig(file, {TOKEN}), {configFile: file, env: {TOKEN}})
  cleanups.push(async () => {
    await proxy.close()
    await v1.close()
    await v2.close()
    rmSync(dir, {recursive: true, force: true})
  })
  const call = async (method: string, path: string, body?: string, headers: Record<string, string> = auth) => {
    const response = await fetch(proxy.adminUrl + path, {method, headers, ...(body === undefined ? {} : {body})})
    const text = await response.text()
    return {status: response.status, text, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined}
  }
  return {proxy, v1, v2, file, call}
}

describe('admin API', () => {
  it('serves /healthz without a token and refuses everything else without the right one', async () => {
    const {call} = await setup()
    expect(await call('GET', '/healthz', undefined, {})).toMatchObject({status: 200, text: 'ok\n'})
    expect((await call('GET', '/api/state', undefined, {})).status).toBe(401)
    expect((await call('GET', '/api/state', undefined, {authorization: 'Bearer wrong'})).status).toBe(401)
    expect((await call('GET', '/metrics', undefined, {})).status).toBe(401)
    expect((await call('GET', '/api/state')).status).toBe(200)
  })

  it('exposes /metrics without the token when metricsAuth is false', async () => {
    const v1 = await startUpstream('v1')
    const v2 = await startUpstream('v2')
    const proxy = await start(config(yaml(v1, v2).replace('token: "${TOKEN}" }', 'token: "${TOKEN}", metricsAuth: false }'), {TOKEN}))
    cleanups.push(async () => {
      await proxy.close()
      await v1.close()
      await v2.close()
    })
    expect((await fetch(`${proxy.adminUrl}/metrics`)).status).toBe(200)
    expect((await fetch(`${proxy.adminUrl}/api/state`)).status).toBe(401)
  })

  it('reports the whole state', async () => {
    const {call, proxy, v1} = await setup()
    const state = (await call('GET', '/api/state')).json!
    expect(state).toMatchObject({generation: 1, pid: process.pid, workers: 1, listen: `127.0.0.1:${proxy.address.port}`, routes: [{name: 'r', service: 's'}]})
    expect(state.services).toEqual({
      s: {
        total: 100,
        canary: 'v2',
        stable: 'v1',
        versions: [
          {name: 'v1', weight: 80, effectiveWeight: 80, healthy: true, servers: [{url: v1.url, healthy: true}]},
          {name: 'v2', weight: 20, effectiveWeight: 20, healthy: true, servers: [expect.objectContaining({healthy: true})]},
        ],
      },
    })
  })

  it('applies weights atomically and refuses bad updates with a reason', async () => {
    const {call, proxy} = await setup()
    const ok = await call('PUT', '/api/services/s/weights', '{"v1": 0, "v2": 100}')
    expect(ok.status).toBe(200)
    expect(ok.json).toMatchObject({total: 100, versions: [{name: 'v1', weight: 0}, {name: 'v2', weight: 100}]})
    for (let i = 0; i < 5; i++) expect((await get(`${proxy.url}/`)).text).toBe('v2')
    const refused: [string, RegExp][] = [
      ['{"v3": 1}', /unknown version "v3"/],
      ['{"v1": -1}', /must not be negative/],
      ['{"v1": 1.5}', /must be an integer/],
      ['{"v1": 0, "v2": 0}', /all weights would be 0/],
      ['{"v1": "50"}', /must be an integer/],
      ['not json', /bad JSON/],
      ['[1]', /expected a JSON object/],
    ]
    for (const [body, reason] of refused) {
      const response = await call('PUT', '/api/services/s/weights', body)
      expect(response.status, body).toBe(400)
      expect(String(response.json?.error)).toMatch(reason)
    }
    expect((await call('PUT', '/api/services/nope/weights', '{"v1": 1}')).status).toBe(404)
  })

  it('counts requests, errors and latency per version since a time', async () => {
    const {call, proxy, v2} = await setup()
    const since = Date.now()
    for (let i = 0; i < 10; i++) await get(`${proxy.url}/`)
    await v2.close()
    await call('PUT', '/api/services/s/weights', '{"v1": 0, "v2": 100}')
    // v2 is down and v1 has weight 0: the connect error is a 502, counted as a v2 error.
    expect((await get(`${proxy.url}/`)).status).toBe(502)
    const stats = (await call('GET', `/api/services/s/stats?since=${since}`)).json!
    expect(stats).toMatchObject({service: 's', clamped: false, sinceMs: Math.floor(since / 1000) * 1000})
    const versions = stats.versions as Record<string, {requests: number; errors: number; codes: Record<string, number>; latency: {count: number; buckets: {le: unknown; count: number}[]}}>
    expect(versions.v1).toMatchObject({requests: 8, errors: 0, codes: {'2xx': 8}})
    expect(versions.v2).toMatchObject({requests: 3, errors: 1, codes: {'2xx': 2, '5xx': 1}})
    expect(versions.v1?.latency.count).toBe(8)
    expect(versions.v1?.latency.buckets.at(-1)).toEqual({le: '+Inf', count: 8})
    expect((await call('GET', '/api/services/s/stats')).status).toBe(400)
    expect((await call('GET', '/api/services/nope/stats?since=0')).status).toBe(404)
    expect((await call('GET', '/api/services/s/stats?since=0')).json).toMatchObject({clamped: true})
  })

  it('reloads a valid file and refuses an invalid one with a located error, keeping the old config', async () => {
    const {call, proxy, file, v1, v2} = await setup()
    writeFileSync(file, yaml(v1, v2, [0, 100]))
    expect(await call('POST', '/api/reload')).toMatchObject({status: 200, json: {generation: 2}})
    expect((await get(`${proxy.url}/`)).text).toBe('v2')
    writeFileSync(file, `${yaml(v1, v2, [100, 0])}bogus: 1\n`)
    const refused = await call('POST', '/api/reload')
    expect(refused.status).toBe(400)
    expect(refused.json?.problems).toEqual([expect.objectContaining({path: 'bogus', location: expect.objectContaining({line: 10, column: 1})})])
    expect((await get(`${proxy.url}/`)).text).toBe('v2')
    expect(proxy.generation).toBe(2)
    const metrics = (await call('GET', '/metrics')).text
    expect(metrics).toContain('canary_proxy_config_reloads_total{result="success"} 1')
    expect(metrics).toContain('canary_proxy_config_reloads_total{result="failure"} 1')
  })

  it('keeps the weighted round-robin position across a reload that does not change the service', async () => {
    const {proxy, file, v1, v2} = await setup()
    writeFileSync(file, yaml(v1, v2, [3, 1]))
    await proxy.reload()
    const texts = [(await get(`${proxy.url}/`)).text, (await get(`${proxy.url}/`)).text]
    await proxy.reload()
    texts.push((await get(`${proxy.url}/`)).text, (await get(`${proxy.url}/`)).text)
    // EDF at 3:1 picks v1 v1 v1 v2; a rebuilt schedule would restart at v1 v1.
    expect(texts).toEqual(['v1', 'v1', 'v1', 'v2'])
  })

  it('reloads when the config file changes', async () => {
    const v1 = await startUpstream('v1')
    const v2 = await startUpstream('v2')
    const dir = mkdtempSync(join(tmpdir(), 'canary-watch-'))
    const file = join(dir, 'proxy.yaml')
    writeFileSync(file, yaml(v1, v2))
    const proxy = await start(await loadProxyConfig(file, {TOKEN}), {configFile: file, env: {TOKEN}, watchConfig: true})
    cleanups.push(async () => {
      await proxy.close()
      await v1.close()
      await v2.close()
      rmSync(dir, {recursive: true, force: true})
    })
    writeFileSync(file, yaml(v1, v2, [0, 100]))
    await eventually(() => proxy.generation === 2)
    expect((await get(`${proxy.url}/`)).text).toBe('v2')
  })

  it('renders metrics that pass promtool check metrics', async () => {
    const {call, proxy, v2} = await setup('accessLog: { path: "-" }\n'.replace('"-"', join(tmpdir(), `canary-m-${process.pid}.log`)))
    for (let i = 0; i < 10; i++) await get(`${proxy.url}/`)
    await v2.close()
    for (let i = 0; i < 5; i++) await get(`${proxy.url}/`)
    const text = (await call('GET', '/metrics')).text
    expect(text).toMatch(/canary_proxy_requests_total\{route="r",service="s",version="v1",code="200"\} \d+/)
    expect(text).toContain('canary_proxy_request_duration_seconds_bucket{route="r",service="s",version="v1",le="+Inf"}')
    expect(text).toContain('canary_proxy_weight{service="s",version="v2"} 20')
    expect(text).toContain('canary_proxy_version_redistributed{service="s",version="v2"} 1')
    expect(text).toMatch(/canary_proxy_server_healthy\{service="s",version="v2",server="http:\/\/127\.0\.0\.1:\d+"\} 0/)
    const promtool = spawnSync('promtool', ['check', 'metrics'], {input: text, encoding: 'utf8'})
    if (promtool.error !== undefined) {
      // promtool missing (Debian package `prometheus`): the format assertions above still ran.
      expect((promtool.error as NodeJS.ErrnoException).code).toBe('ENOENT')
      return
    }
    expect(promtool.stdout + promtool.stderr).toBe('')
    expect(promtool.status).toBe(0)
  })

  it('uses the injected registry, not the global one', async () => {
    const registry = new Registry()
    const v1 = await startUpstream('v1')
    const v2 = await startUpstream('v2')
    const proxy = await start(config(yaml(v1, v2), {TOKEN}), {registry})
    cleanups.push(async () => {
      await proxy.close()
      await v1.close()
      await v2.close()
    })
    expect(registry.getMetricsAsArray().map((m) => m.name)).toContain('canary_proxy_requests_total')
  })

  it('refuses to start with a non-loopback admin listener and no token', async () => {
    const cfg = config(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes: [{ name: r, service: s }]
services:
  s:
    versions: [{ name: v1, servers: [http://127.0.0.1:1] }]
`)
    await expect(startProxy({...cfg, admin: {...cfg.admin, listen: '0.0.0.0:0'}})).rejects.toBeInstanceOf(ConfigError)
  })
})
