#!/usr/bin/env node
// `npm run bench:proxy:tls`: requests/s of `canary proxy` terminating TLS against Debian's nginx
// terminating TLS, same machine, same run, same upstreams (one nginx with two server blocks, v1/v2,
// split 80/20 by both proxies as in bench/proxy.js).
// HTTP/1.1: `wrk -t2 -c64` over https (keep-alive, so handshakes are not what is measured).
// HTTP/2: `h2load -c16 -m10 -n<4000 × SECONDS>` (16 connections, 10 concurrent streams each), if h2load is installed
// (Debian: nghttp2-client); canary forwards HTTP/2 to the HTTP/1.1 upstreams like nginx does.
// Targets: nginx (worker_processes auto), canary (1 worker), canary --workers 2; interleaved
// ROUNDS times after a warm-up; medians and the per-round ratio to nginx.
// Env: ROUNDS (3), SECONDS (10), CONNECTIONS (64), WARMUP_SECONDS (8), H2_REQUESTS_PER_SECOND (4000). `--smoke`: one 1 s round,
// no warm-up, checks only that every target answers (for CI).
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'

import {canaryConfig, checkTools, cpuSeconds, freePort, median, proxyNginxConf, runWrk, startCanary, startNginx, stopChild, upstreamNginxConf, WORK} from './proxy/common.js'

const SMOKE = process.argv.includes('--smoke')
const ROUNDS = SMOKE ? 1 : Number(process.env.ROUNDS ?? 3)
const SECONDS = SMOKE ? 1 : Number(process.env.SECONDS ?? 10)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 64)
const WARMUP_SECONDS = SMOKE ? 0 : Number(process.env.WARMUP_SECONDS ?? 8)
if (SMOKE) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements')
/** HTTP/2 runs are sized in requests (see runH2load): this many per second of SECONDS. */
const H2_REQUESTS_PER_SECOND = Number(process.env.H2_REQUESTS_PER_SECOND ?? 4000)

checkTools()
if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
  console.error('missing: openssl. Install it with: apt-get install -y openssl')
  process.exit(2)
}
const HAVE_H2LOAD = spawnSync('sh', ['-c', 'command -v h2load']).status === 0
if (!HAVE_H2LOAD) console.log('h2load not found (apt-get install -y nghttp2-client): HTTP/2 rows are skipped')

/**
 * Runs h2load for a fixed number of requests (H2_REQUESTS_PER_SECOND × seconds); parses req/s,
 * successes and failures. Not `-D` (duration): on this machine h2load 1.52 twice kept one
 * client sending requests for minutes after the duration ended, while the proxy answered them.
 */
function runH2load(url, seconds) {
  return new Promise((resolveRun) => {
    const requests = Math.max(1000, Math.round(seconds * H2_REQUESTS_PER_SECOND))
    const child = spawn('h2load', ['-c16', '-m10', '-t2', `-n${requests}`, url], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    // A run that does not finish in a generous time counts as failed rather than hanging the benchmark.
    const limitSeconds = Math.max(60, seconds * 10)
    const guard = setTimeout(() => {
      console.log(`h2load ${url}: still running after ${limitSeconds} s; stopped (run counted as failed)`)
      child.kill('SIGKILL')
    }, limitSeconds * 1000)
    child.once('exit', (_code, signal) => {
      clearTimeout(guard)
      if (signal === 'SIGKILL') return resolveRun({rps: 0, requests: 0, failed: 1, raw: out})
      const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0)
      const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out)
      const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)
      const non2xx = Number(status?.[2] ?? 0) + Number(status?.[3] ?? 0) + Number(status?.[4] ?? 0)
      resolveRun({rps, requests: Number(m?.[3] ?? 0), failed: Number(m?.[4] ?? 0) + Number(m?.[5] ?? 0) + non2xx, raw: out})
    })
  })
}

const cleanups = []
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))
async function cleanup() {
  for (const fn of cleanups.reverse()) await fn()
  cleanups.length = 0
}

try {
  await main()
} finally {
  await cleanup()
}

async function main() {
  // A self-signed certificate for 127.0.0.1 made for this run (neither client verifies it).
  const certFile = join(WORK, 'tls-cert.pem')
  const keyFile = join(WORK, 'tls-key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {stdio: 'ignore'})

  const [up1, up2, nginxPort, canaryPort, canaryAdmin, clusterPort, clusterAdmin] = await Promise.all(Array.from({length: 7}, freePort))
  const upstream = startNginx('upstream-nginx', upstreamNginxConf(up1, up2))
  cleanups.push(() => upstream.stop())
  const nginx = startNginx('tls-nginx', proxyNginxConf(nginxPort, up1, up2, {name: 'tls-nginx', tls: {certFile, keyFile}}))
  cleanups.push(() => nginx.stop())

  const upstreams = [
    {name: 'v1', weight: 80, servers: [`http://127.0.0.1:${up1}`]},
    {name: 'v2', weight: 20, servers: [`http://127.0.0.1:${up2}`]},
  ]
  const tls = `tls:\n  certificates: [{ certFile: ${certFile}, keyFile: ${keyFile} }]\n`
  const single = join(WORK, 'canary-tls-single.yaml')
  writeFileSync(single, canaryConfig({listenPort: canaryPort, adminPort: canaryAdmin, upstreams, extra: tls}))
  const clustered = join(WORK, 'canary-tls-cluster.yaml')
  writeFileSync(clustered, canaryConfig({listenPort: clusterPort, adminPort: clusterAdmin, upstreams, extra: tls}))
  const canary = await startCanary(single, 1)
  cleanups.push(() => stopChild(canary.child))
  const cluster = await startCanary(clustered, 2)
  cleanups.push(() => stopChild(cluster.child))

  const targets = [
    {name: 'nginx TLS (2 workers)', url: `https://127.0.0.1:${nginxPort}/`, pid: nginx.pid},
    {name: 'canary TLS (1 worker)', url: `https://127.0.0.1:${canaryPort}/`, pid: canary.child.pid},
    {name: 'canary TLS --workers 2', url: `https://127.0.0.1:${clusterPort}/`, pid: cluster.child.pid},
  ]
  const protocols = HAVE_H2LOAD ? ['http/1.1', 'h2'] : ['http/1.1']
  const run = (t, protocol, seconds) => (protocol === 'h2' ? runH2load(t.url, seconds) : runWrk(t.url, {connections: CONNECTIONS, seconds}))
  for (const t of targets) t.runs = {'http/1.1': [], h2: []}

  console.log(`TLS proxy benchmark: HTTP/1.1 wrk -t2 -c${CONNECTIONS}${HAVE_H2LOAD ? `, HTTP/2 h2load -t2 -c16 -m10 -n${Math.max(1000, SECONDS * H2_REQUESTS_PER_SECOND)}` : ''}, ${SECONDS}s, ${ROUNDS} interleaved round(s); load average now ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  if (WARMUP_SECONDS > 0) for (const t of targets) for (const p of protocols) await run(t, p, WARMUP_SECONDS)
  for (let round = 1; round <= ROUNDS; round++) {
    for (const protocol of protocols) {
      for (const t of targets) {
        const cpuBefore = cpuSeconds(t.pid)
        const result = await run(t, protocol, SECONDS)
        const failed = protocol === 'h2' ? result.failed : result.non2xx + result.socketErrors
        const cpuUsPerRequest = ((cpuSeconds(t.pid) - cpuBefore) * 1e6) / Math.max(1, result.requests)
        t.runs[protocol].push({rps: result.rps, failed, cpuUsPerRequest, p99: result.p99})
        console.log(`round ${round} ${protocol.padEnd(8)} ${t.name.padEnd(24)} ${result.rps.toFixed(0).padStart(7)} req/s  ${protocol === 'h2' ? '' : `p99 ${result.p99.toFixed(2)} ms  `}failed ${failed}  CPU ${cpuUsPerRequest.toFixed(0)} µs/req`)
      }
    }
  }

  console.log('')
  console.log(`summary (medians of ${ROUNDS}; "% of nginx" is the median of per-round ratios; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`)
  console.log('| protocol | proxy | req/s | % of nginx | proxy CPU µs/req | failed requests |')
  console.log('|---|---|---|---|---|---|')
  const summary = []
  for (const protocol of protocols) {
    const reference = targets[0].runs[protocol]
    for (const t of targets) {
      const runs = t.runs[protocol]
      const row = {
        protocol,
        name: t.name,
        rps: median(runs.map((r) => r.rps)),
        ofNginx: median(runs.map((r, i) => r.rps / Math.max(1, reference[i].rps))),
        cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
        failed: runs.reduce((a, r) => a + r.failed, 0),
      }
      summary.push(row)
      console.log(`| ${protocol} | ${row.name} | ${row.rps.toFixed(0)} | ${(row.ofNginx * 100).toFixed(1)}% | ${row.cpuUsPerRequest.toFixed(0)} | ${row.failed} |`)
    }
  }
  writeFileSync(join(WORK, 'last-tls-result.json'), JSON.stringify({at: new Date().toISOString(), smoke: SMOKE, loadavg: loadavg(), summary}, null, 2))
  console.log(`\n(raw results: ${join(WORK, 'last-tls-result.json')})`)
  // Every target must have answered; in smoke mode that is all that is checked.
  const silent = summary.filter((row) => row.rps <= 0 || row.failed > 0)
  if (silent.length > 0) {
    console.error(`FAIL: ${silent.map((r) => `${r.protocol} ${r.name}: ${r.rps.toFixed(0)} req/s, ${r.failed} failed`).join('; ')}`)
    process.exitCode = 1
  }
}
