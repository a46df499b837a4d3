/**
 * The built-in demo app: a tiny HTTP server that answers with its version. `canary demo` runs it as
 * `local.command`; with DEMO_ERROR_PERCENT set it answers 500 to that share of requests (spread
 * evenly by a counter, so the share is exact), and DEMO_CRASH_AFTER makes it exit after that many requests.
 * Env: PORT, IMAGE (set by canary), DEMO_ERROR_PERCENT, DEMO_BAD_IMAGE, DEMO_BAD_FROM_MS (epoch ms when the
 * errors begin), DEMO_CRASH_AFTER, DEMO_NEVER_READY.
 */
import {createServer} from 'node:http'

const port = Number(process.env.PORT ?? 8080)
const image = process.env.IMAGE ?? 'demo:dev'
const badImage = process.env.DEMO_BAD_IMAGE
// DEMO_BAD_IMAGE limits the errors to one version, so one spec can describe a good v1 and a bad v2.
const errorPercent = badImage === undefined || badImage === image ? Number(process.env.DEMO_ERROR_PERCENT ?? 0) : 0
const affected = badImage === undefined || badImage === image
const crashAfter = process.env.DEMO_CRASH_AFTER === undefined || !affected ? undefined : Number(process.env.DEMO_CRASH_AFTER)
const neverReady = process.env.DEMO_NEVER_READY === '1' && affected
const badFromMs = Number(process.env.DEMO_BAD_FROM_MS ?? 0)
let served = 0

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(neverReady ? 503 : 200, {'content-type': 'text/plain'})
    res.end(neverReady ? 'starting\n' : 'ok\n')
    return
  }
  served++
  if (crashAfter !== undefined && served > crashAfter) {
    // Simulates a crash: the connection drops and the process dies.
    req.socket.destroy()
    process.kill(process.pid, 'SIGKILL')
    return
  }
  // Error every (100 / errorPercent)-th request: an exact share without randomness.
  const fails = errorPercent > 0 && Date.now() >= badFromMs && Math.floor((served * errorPercent) / 100) > Math.floor(((served - 1) * errorPercent) / 100)
  res.writeHead(fails ? 500 : 200, {'content-type': 'application/json'})
  res.end(JSON.stringify({version: image, ok: !fails}))
})

server.listen(port, '127.0.0.1')
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => server.close())
