#!/usr/bin/env node
// `npm run bench:proxy:reliability`: failures under control-plane churn and upstream loss.
// Phase 1: under `wrk -c64`, 100 weight changes and 10 config reloads → expect 0 failed requests.
// Phase 2: under `wrk -c64`, kill one of v1's two upstream processes mid-load → only requests in
//          flight on it may fail (retries usually save even those).
// Upstreams are Node processes (so one can be killed); needs wrk and a built CLI.
import {spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {adminFetch, canaryConfig, checkTools, freePort, ROOT, runWrk, startCanary, stopChild, WORK} from './proxy/common.js'

const SECONDS = Number(process.env.SECONDS ?? 12)
checkTools()
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
    const spacingMs = ((SECONDS - 2) * 1000) / 110
    for (let i = 0; i < 110; i++) {
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

  const checks = [
    ['0 failed requests during 100 weight changes and 10 reloads', failed1 === 0 && weightFailures === 0 && reloadFailures === 0],
    ['killing an upstream fails at most the in-flight requests (≤ 64)', failed2 <= 64],
    ['the killed upstream is marked unhealthy', v1bHealthy === false],
  ]
  console.log('')
  for (const [name, ok] of checks) {
    console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`)
    if (!ok) failed = true
  }
} finally {
  await cleanup()
}
process.exitCode = failed ? 1 : 0
