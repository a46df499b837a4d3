#!/usr/bin/env node
// `npm run bench:proxy`: throughput, p99 and RSS of `canary proxy` against nginx and the
// `http-proxy` package, same machine, same load (the method of bench/proxy.js).
// Upstream: one nginx with two server blocks (v1/v2). Proxies, all splitting 80/20:
// nginx, canary (one data-plane worker, metrics + access log on), canary --workers 2, http-proxy,
// and a bare undici-stream proxy with no features (Node's own floor on this machine, for reference).
// Besides req/s it records the proxy's CPU per request (µs, from /proc), which carries over to
// other machines better than req/s on a shared box.
// Load: `wrk -t2 -c64 -d10s`, interleaved ROUNDS times after a warm-up; prints medians.
// Env: ROUNDS (3), SECONDS (10), CONNECTIONS (64), WARMUP_SECONDS (5).
// `--smoke`: one round of 1 s per proxy at -c16, no warm-up, no waiting for a quiet machine: every code path in a
// few seconds, for CI (test/bench/bench-smoke.test.ts). Its figures are not measurements.
import {spawn} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'

import {adminFetch, canaryConfig, checkTools, cpuSeconds, freePort, median, processTree, ROOT, rssMb, runWrk, SMOKE, startCanary, startNginx, stopChild, upstreamNginxConf, proxyNginxConf, WORK} from './proxy/common.js'

const ROUNDS = SMOKE ? 1 : Number(process.env.ROUNDS ?? 3)
const SECONDS = SMOKE ? 1 : Number(process.env.SECONDS ?? 10)
const CONNECTIONS = SMOKE ? 16 : Number(process.env.CONNECTIONS ?? 64)
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 5)

checkTools()

/** Waits (at most ~3 s) for the machine to be under 25 % busy, as the baseline measurements did. */
async function waitForQuiet() {
  const busy = () => {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)
    const values = fields.map(Number)
    const idle = values[3] + values[4]
    return {idle, total: values.reduce((a, b) => a + b, 0)}
  }
  for (let i = 0; i < (SMOKE ? 0 : 6); i++) {
    const a = busy()
    await new Promise((r) => setTimeout(r, 500))
    const b = busy()
    if (1 - (b.idle - a.idle) / Math.max(1, b.total - a.total) < 0.25) return
  }
}

const cleanups = []
const cleanup = async () => {
  for (const fn of cleanups.reverse()) await fn()
  cleanups.length = 0
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))

try {
  await main()
} finally {
  await cleanup()
}

async function main() {
  const [up1, up2, nginxPort, canaryPort, canaryAdmin, clusterPort, clusterAdmin, httpProxyPort, floorPort] = await Promise.all(Array.from({length: 9}, freePort))
  const upstream = startNginx('upstream-nginx', upstreamNginxConf(up1, up2))
  cleanups.push(() => upstream.stop())
  const nginx = startNginx('proxy-nginx', proxyNginxConf(nginxPort, up1, up2))
  cleanups.push(() => nginx.stop())

  const upstreams = [
    {name: 'v1', weight: 80, servers: [`http://127.0.0.1:${up1}`]},
    {name: 'v2', weight: 20, servers: [`http://127.0.0.1:${up2}`]},
  ]
  const single = join(WORK, 'canary-single.yaml')
  writeFileSync(single, canaryConfig({listenPort: canaryPort, adminPort: canaryAdmin, upstreams}))
  const clustered = join(WORK, 'canary-cluster.yaml')
  writeFileSync(clustered, canaryConfig({listenPort: clusterPort, adminPort: clusterAdmin, upstreams}))
  const canary = await startCanary(single, 1)
  cleanups.push(() => stopChild(canary.child))
  const cluster = await startCanary(clustered, 2)
  cleanups.push(() => stopChild(cluster.child))

  const httpProxy = spawn(process.execPath, [join(ROOT, 'bench/proxy/http-proxy-server.js'), String(httpProxyPort), `http://127.0.0.1:${up1}=80`, `http://127.0.0.1:${up2}=20`], {stdio: ['ignore', 'pipe', 'inherit']})
  cleanups.push(() => stopChild(httpProxy))
  await new Promise((r) => httpProxy.stdout.once('data', r))
  const floor = spawn(process.execPath, [join(ROOT, 'bench/proxy/undici-floor-server.js'), String(floorPort), `http://127.0.0.1:${up1}=80`, `http://127.0.0.1:${up2}=20`], {stdio: ['ignore', 'pipe', 'inherit']})
  cleanups.push(() => stopChild(floor))
  await new Promise((r) => floor.stdout.once('data', r))

  const targets = [
    {name: 'nginx (2 workers)', url: `http://127.0.0.1:${nginxPort}/`, pid: nginx.pid},
    {name: 'canary proxy (1 worker)', url: `http://127.0.0.1:${canaryPort}/`, pid: canary.child.pid, admin: `http://127.0.0.1:${canaryAdmin}`},
    {name: 'canary proxy --workers 2', url: `http://127.0.0.1:${clusterPort}/`, pid: cluster.child.pid, admin: `http://127.0.0.1:${clusterAdmin}`},
    {name: 'http-proxy (1 process)', url: `http://127.0.0.1:${httpProxyPort}/`, pid: httpProxy.pid},
    // Not a target: the bare undici-stream design with no features, i.e. Node's own floor.
    {name: 'floor: bare undici stream', url: `http://127.0.0.1:${floorPort}/`, pid: floor.pid},
  ]
  for (const t of targets) t.runs = []

  if (SMOKE) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements and the checks are informative only')
  console.log(`proxy benchmark: wrk -t2 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} interleaved rounds; load average now ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  for (const t of SMOKE ? [] : targets.slice(1)) {
    process.stdout.write(`warm-up ${t.name} (${WARMUP_SECONDS}s)… `)
    await runWrk(t.url, {connections: CONNECTIONS, seconds: WARMUP_SECONDS})
    console.log('done')
  }
  const sinceMs = Date.now()
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      await waitForQuiet()
      let peakRss = 0
      let peakProcessRss = 0
      const sample = () => {
        const per = processTree(t.pid).map(rssMb)
        peakRss = Math.max(peakRss, per.reduce((a, b) => a + b, 0))
        peakProcessRss = Math.max(peakProcessRss, ...per)
      }
      const cpuBefore = cpuSeconds(t.pid)
      const result = await runWrk(t.url, {connections: CONNECTIONS, seconds: SECONDS, onTick: sample})
      const cpuUsPerRequest = ((cpuSeconds(t.pid) - cpuBefore) * 1e6) / Math.max(1, result.requests)
      t.runs.push({...result, rss: peakRss, processRss: peakProcessRss, cpuUsPerRequest})
      console.log(`round ${round} ${t.name.padEnd(26)} ${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms  errors ${result.non2xx + result.socketErrors}  RSS ${peakRss.toFixed(0)} MB (max/process ${peakProcessRss.toFixed(0)})  CPU ${cpuUsPerRequest.toFixed(0)} µs/req`)
    }
  }

  // Ratios are taken within a round (same minute, same background load), then the median.
  const perRound = (t, reference) => median(t.runs.map((r, i) => r.rps / reference.runs[i].rps))
  console.log('')
  console.log(`summary (medians of ${ROUNDS}; ratios are medians of per-round ratios; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; a busy machine lowers every figure)`)
  console.log('| proxy | req/s | % of nginx | × http-proxy | p50 ms | p99 ms | RSS MB (total / max per process) | proxy CPU µs/req | failed requests |')
  console.log('|---|---|---|---|---|---|---|---|---|')
  const summary = targets.map((t) => {
    const rps = median(t.runs.map((r) => r.rps))
    const row = {
      name: t.name,
      rps,
      ofNginx: perRound(t, targets[0]),
      ofHttpProxy: perRound(t, targets[3]),
      p50: median(t.runs.map((r) => r.p50)),
      p99: median(t.runs.map((r) => r.p99)),
      rss: median(t.runs.map((r) => r.rss)),
      processRss: Math.max(...t.runs.map((r) => r.processRss)),
      failed: t.runs.reduce((a, r) => a + r.non2xx + r.socketErrors, 0),
      cpuUsPerRequest: median(t.runs.map((r) => r.cpuUsPerRequest)),
    }
    console.log(`| ${row.name} | ${rps.toFixed(0)} | ${(row.ofNginx * 100).toFixed(1)}% | ${row.ofHttpProxy.toFixed(2)} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.rss.toFixed(0)} / ${row.processRss.toFixed(0)} | ${row.cpuUsPerRequest.toFixed(0)} | ${row.failed} |`)
    return row
  })

  // Split accuracy, from canary's own stats API over the measured rounds.
  for (const t of targets.filter((x) => x.admin !== undefined)) {
    const stats = await adminFetch(t.admin, `/api/services/app/stats?since=${sinceMs}`)
    const v1 = stats.body.versions?.v1?.requests ?? 0
    const v2 = stats.body.versions?.v2?.requests ?? 0
    console.log(`split ${t.name}: v1 ${v1}, v2 ${v2} → v2 share ${((100 * v2) / Math.max(1, v1 + v2)).toFixed(2)}%`)
  }

  const [, one, two, , floorRow] = summary
  console.log(`canary (1 worker) vs the bare Node floor: ${((100 * one.rps) / floorRow.rps).toFixed(0)}% of its req/s, ${(one.cpuUsPerRequest / floorRow.cpuUsPerRequest).toFixed(2)}× its CPU per request`)
  const checks = [
    ['one worker ≥ 30% of nginx req/s', one.ofNginx >= 0.3, `${(one.ofNginx * 100).toFixed(1)}%`],
    ['one worker ≥ 2.5× http-proxy', one.ofHttpProxy >= 2.5, `${one.ofHttpProxy.toFixed(2)}×`],
    ['--workers 2 ≥ 45% of nginx req/s', two.ofNginx >= 0.45, `${(two.ofNginx * 100).toFixed(1)}%`],
    ['p99 ≤ 20 ms at c64 (one worker)', one.p99 <= 20, `${one.p99.toFixed(2)} ms`],
    ['p99 ≤ 20 ms at c64 (--workers 2)', two.p99 <= 20, `${two.p99.toFixed(2)} ms`],
    ['RSS ≤ 128 MB per process', Math.max(one.processRss, two.processRss) <= 128, `${Math.max(one.processRss, two.processRss).toFixed(0)} MB`],
    ['no failed requests through canary', one.failed + two.failed === 0, String(one.failed + two.failed)],
  ]
  console.log('')
  for (const [name, ok, value] of checks) console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}: ${value}`)
  const resultFile = join(WORK, SMOKE ? 'last-smoke-result.json' : 'last-result.json')
  writeFileSync(resultFile, JSON.stringify({at: new Date().toISOString(), smoke: SMOKE, loadavg: loadavg(), summary, checks}, null, 2))
  console.log(`\n(raw results: ${resultFile})`)
}
