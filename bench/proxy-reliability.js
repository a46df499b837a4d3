#!/usr/bin/env node
// `npm run bench:proxy:reliability`: failures under control-plane churn and upstream loss.
// Phase 1: under `wrk -c64`, 100 weight changes and 10 config reloads → expect 0 failed requests.
// Phase 2: under `wrk -c64`, kill one of v1's two upstream processes mid-load → only requests in
//          flight on it may fail (retries usually save even those).
// Phase 3: healthy clients' latency (`wrk -c16`) alone, then while 300 slow clients are connected
//          to a proxy capped at 32 upstream connections: 150 sending a body slowly, 150 not reading
//          a 1 MiB answer (raw sockets, paused) → expect 0 failed healthy requests.
// Phase 4: access log on a stdout pipe nobody reads, under `wrk -c64`: worker RSS sampled every
//          0.5 s and the dropped-lines counter → expect RSS to stay bounded and 0 failed requests.
// Upstreams are Node processes (so one can be killed); needs wrk and a built CLI.
// Env: SECONDS (12) per phase. `--smoke`: 2–3 s phases, 20 weight changes and 2 reloads, 40 slow
// clients (still more than the 32 upstream connections): every code path in seconds, for CI
// (test/bench/bench-smoke.test.ts); the checks are then informative only.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'

import {adminFetch, canaryConfig, checkTools, freePort, processTree, ROOT, rssMb, runWrk, SMOKE, startCanary, stopChild, WORK} from './proxy/common.js'

const SECONDS = SMOKE ? 3 : Number(process.env.SECONDS ?? 12)
/** Control-plane operations in phase 1: every 11th is a reload, the others weight changes. */
const OPERATIONS = SMOKE ? 22 : 110
/** Phase 3's slow clients, half slow senders and half paused readers. */
const SLOW_CLIENTS = SMOKE ? 40 : 300
/** Phase 3's and 4's load runs. */
const SLOW_SECONDS = SMOKE ? 2 : Math.max(3, Math.round(SECONDS / 2))
const LOG_SECONDS = SMOKE ? 2 : SECONDS
checkTools(['wrk'])
if (SMOKE) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements and the checks are informative only')
const children = []
const cleanup = async () => {
  for (const child of children.reverse()) await stopChild(child, 'SIGKILL')
  children.length = 0
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))

async function upstream(port, name) {
  const child = spawn(process.execPath, [join(ROOT, 'bench/proxy/upstream.js'), String(port), name], {stdio: ['ignore', 'pipe', 'inherit']})
  children.push(child)
  await new Promise((r) => child.stdout.once('data', r))
  return child
}

let failed = false
try {
  const [a, b, c, listenPort, adminPort] = await Promise.all(Array.from({length: 5}, freePort))
  await upstream(a, 'v1a')
  const v1b = await upstream(b, 'v1b')
  await upstream(c, 'v2')
  const file = join(WORK, 'reliability.yaml')
  const write = (w1, w2) =>
    writeFileSync(
      file,
      canaryConfig({
        listenPort,
        adminPort,
        accessLog: false,
        upstreams: [
          {name: 'v1', weight: w1, servers: [`http://127.0.0.1:${a}`, `http://127.0.0.1:${b}`]},
          {name: 'v2', weight: w2, servers: [`http://127.0.0.1:${c}`]},
        ],
      }),
    )
  write(80, 20)
  const proxy = await startCanary(file, 1)
  children.push(proxy.child)
  const admin = `http://127.0.0.1:${adminPort}`
  const url = `http://127.0.0.1:${listenPort}/`

  // Phase 1: churn.
  let weightChanges = 0
  let weightFailures = 0
  let reloads = 0
  let reloadFailures = 0
  const churn = (async () => {
    const spacingMs = ((SECONDS - 2) * 1000) / OPERATIONS
    for (let i = 0; i < OPERATIONS; i++) {
      await new Promise((r) => setTimeout(r, spacingMs))
      if (i % 11 === 10) {
        write(50 + (i % 40), 50 - (i % 40))
        const response = await adminFetch(admin, '/api/reload', {method: 'POST'})
        reloads++
        if (response.status !== 200) reloadFailures++
      } else {
        const canary = (i * 7) % 101
        const response = await adminFetch(admin, '/api/services/app/weights', {method: 'PUT', headers: {'content-type': 'application/json'}, body: JSON.stringify({v1: 100 - canary, v2: canary})})
        weightChanges++
        if (response.status !== 200) weightFailures++
      }
    }
  })()
  const phase1 = await runWrk(url, {connections: 64, seconds: SECONDS})
  await churn
  const failed1 = phase1.non2xx + phase1.socketErrors
  console.log(`phase 1: ${phase1.requests} requests under ${weightChanges} weight changes (${weightFailures} refused) and ${reloads} reloads (${reloadFailures} refused): ${failed1} failed requests (non-2xx ${phase1.non2xx}, socket errors ${phase1.socketErrors}), ${phase1.rps.toFixed(0)} req/s`)

  // Phase 2: kill one upstream of v1 mid-load.
  await adminFetch(admin, '/api/services/app/weights', {method: 'PUT', headers: {'content-type': 'application/json'}, body: JSON.stringify({v1: 80, v2: 20})})
  const before = (await adminFetch(admin, '/api/state')).body
  const killer = setTimeout(() => v1b.kill('SIGKILL'), (SECONDS * 1000) / 3)
  const phase2 = await runWrk(url, {connections: 64, seconds: SECONDS})
  clearTimeout(killer)
  const failed2 = phase2.non2xx + phase2.socketErrors
  const after = (await adminFetch(admin, '/api/state')).body
  const metrics = (await adminFetch(admin, '/metrics')).body
  const retries = /canary_proxy_retries_total (\d+)/.exec(metrics)?.[1] ?? '?'
  const v1bHealthy = after.services.app.versions[0].servers[1].healthy
  console.log(`phase 2: ${phase2.requests} requests, one of v1's two upstreams killed after ${(SECONDS / 3).toFixed(0)} s: ${failed2} failed requests (at most the 64 in flight may fail), ${retries} retries; killed server healthy: ${before.services.app.versions[0].servers[1].healthy} → ${v1bHealthy}`)

  // Phase 3: slow clients. A fresh proxy with a small connection cap, so 32 slow clients holding
  // connections would be enough to stall everyone without request and response buffering.
  const [slowListen, slowAdmin] = await Promise.all([freePort(), freePort()])
  const slowFile = join(WORK, 'reliability-slow.yaml')
  writeFileSync(
    slowFile,
    canaryConfig({
      listenPort: slowListen,
      adminPort: slowAdmin,
      accessLog: false,
      extra: 'limits: { upstreamConnections: 32 }\ntimeouts: { clientBodyMs: 120000, clientSendMs: 120000 }\n',
      upstreams: [
        {name: 'v1', weight: 100, servers: [`http://127.0.0.1:${a}`]},
        {name: 'v2', weight: 0, servers: [`http://127.0.0.1:${c}`]},
      ],
    }),
  )
  const slowProxy = await startCanary(slowFile, 1)
  children.push(slowProxy.child)
  const slowUrl = `http://127.0.0.1:${slowListen}/`
  const alone = await runWrk(slowUrl, {connections: 16, seconds: SLOW_SECONDS})
  console.log(`phase 3: healthy clients alone (wrk -c16): ${alone.rps.toFixed(0)} req/s, p50 ${alone.p50.toFixed(2)} ms, p99 ${alone.p99.toFixed(2)} ms`)
  const sockets = []
  const stuck = async (text) => {
    const socket = connect(slowListen, '127.0.0.1')
    socket.on('error', () => undefined)
    sockets.push(socket)
    await once(socket, 'connect')
    socket.pause()
    socket.write(text)
  }
  for (let i = 0; i < SLOW_CLIENTS / 2; i++) await stuck(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n${'b'.repeat(100)}`)
  for (let i = 0; i < SLOW_CLIENTS / 2; i++) await stuck(`GET /big?bytes=${1024 * 1024} HTTP/1.1\r\nHost: a\r\n\r\n`)
  // Steady state: the slow readers' answers have left the upstream (the proxy holds what the
  // clients do not read), so none of them holds an upstream connection any more.
  const settleStart = Date.now()
  const busy = async () => Number(/^canary_proxy_upstream_active_requests\{[^}]*\} (\S+)$/m.exec((await adminFetch(`http://127.0.0.1:${slowAdmin}`, '/metrics')).body)?.[1] ?? 0)
  while ((await busy()) > 0 && Date.now() - settleStart < 60_000) await new Promise((r) => setTimeout(r, 200))
  console.log(`phase 3: ${SLOW_CLIENTS} slow clients connected; their upstream requests settled in ${((Date.now() - settleStart) / 1000).toFixed(1)} s`)
  const withSlow = await runWrk(slowUrl, {connections: 16, seconds: SLOW_SECONDS})
  const slowMetrics = (await adminFetch(`http://127.0.0.1:${slowAdmin}`, '/metrics')).body
  const buffered = /^canary_proxy_buffered_bytes (\S+)$/m.exec(slowMetrics)?.[1] ?? '?'
  const active = /^canary_proxy_upstream_active_requests\{[^}]*\} (\S+)$/m.exec(slowMetrics)?.[1] ?? '?'
  const slowStillConnected = sockets.filter((s) => !s.destroyed).length
  const failed3 = withSlow.non2xx + withSlow.socketErrors
  console.log(`phase 3: with ${SLOW_CLIENTS} slow clients connected (${slowStillConnected} still connected at the end): ${withSlow.rps.toFixed(0)} req/s, p50 ${withSlow.p50.toFixed(2)} ms, p99 ${withSlow.p99.toFixed(2)} ms, ${failed3} failed; proxy buffered ${buffered} bytes for them, ${active} upstream connections busy at the end, primary+worker RSS ${processTree(slowProxy.child.pid).reduce((sum, pid) => sum + rssMb(pid), 0).toFixed(0)} MB`)
  for (const socket of sockets) socket.destroy()

  // Phase 4: the access log goes to a stdout pipe that is never read (the parent stops reading it
  // right after the listening line), so the pipe fills and every later line must be dropped.
  // The same load without an access log first, as the RSS reference.
  const loadWithLog = async (accessLog) => {
    const [listenPort, adminPort] = await Promise.all([freePort(), freePort()])
    const file = join(WORK, 'reliability-log.yaml')
    writeFileSync(file, canaryConfig({listenPort, adminPort, accessLog: false, extra: accessLog ? 'accessLog: { path: "-" }\n' : '', upstreams: [{name: 'v1', weight: 100, servers: [`http://127.0.0.1:${a}`]}, {name: 'v2', weight: 0, servers: [`http://127.0.0.1:${c}`]}]}))
    const started = await startCanary(file, 1)
    children.push(started.child)
    started.child.stdout.removeAllListeners('data')
    started.child.stdout.pause()
    const worker = processTree(started.child.pid).find((pid) => pid !== started.child.pid)
    const rssStart = rssMb(worker)
    let rssMax = rssStart
    const result = await runWrk(`http://127.0.0.1:${listenPort}/${'p'.repeat(200)}`, {connections: 64, seconds: LOG_SECONDS, onTick: () => (rssMax = Math.max(rssMax, rssMb(worker)))})
    const dropped = Number(/^canary_proxy_access_log_dropped_total (\S+)$/m.exec((await adminFetch(`http://127.0.0.1:${adminPort}`, '/metrics')).body)?.[1] ?? NaN)
    await stopChild(started.child, 'SIGKILL')
    return {result, rssStart, rssMax, dropped, failed: result.non2xx + result.socketErrors}
  }
  const noLog = await loadWithLog(false)
  console.log(`phase 4: reference without an access log: ${noLog.result.requests} requests, ${noLog.failed} failed, ${noLog.result.rps.toFixed(0)} req/s; worker RSS ${noLog.rssStart.toFixed(0)} MB → max ${noLog.rssMax.toFixed(0)} MB`)
  const unread = await loadWithLog(true)
  const failed4 = unread.failed
  const dropped = unread.dropped
  console.log(`phase 4: access log on an unread stdout pipe: ${unread.result.requests} requests, ${failed4} failed, ${unread.result.rps.toFixed(0)} req/s; ${dropped} lines dropped; worker RSS ${unread.rssStart.toFixed(0)} MB → max ${unread.rssMax.toFixed(0)} MB`)
  const rssGrowth = unread.rssMax - unread.rssStart - (noLog.rssMax - noLog.rssStart)

  const checks = [
    [`0 failed requests during ${weightChanges} weight changes and ${reloads} reloads`, failed1 === 0 && weightFailures === 0 && reloadFailures === 0],
    [`0 failed healthy requests while ${SLOW_CLIENTS} slow clients are connected`, failed3 === 0 && withSlow.requests > 0 && slowStillConnected === SLOW_CLIENTS],
    ['an unread stdout pipe: access-log lines dropped and counted, worker RSS within 32 MB of the run without a log, 0 failed', dropped > 0 && rssGrowth < 32 && failed4 === 0],
    ['killing an upstream fails at most the in-flight requests (≤ 64)', failed2 <= 64],
    ['the killed upstream is marked unhealthy', v1bHealthy === false],
  ]
  console.log('')
  for (const [name, ok] of checks) {
    console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`)
    if (!ok && !SMOKE) failed = true
  }
} finally {
  await cleanup()
}
process.exitCode = failed ? 1 : 0
