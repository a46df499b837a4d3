// An application "pod" for the cluster suite, run inside a network namespace:
//   ip netns exec <netns> node scripts/cluster/backend.js --name v2 --port 8080 [--error-percent 15]
// Every response names the version (body and `x-version`), so traffic through Traefik can be
// counted per version. --error-percent answers 500 to exactly that share of requests, spread
// evenly (request n fails when floor(n*p/100) steps up), so a test's expectations are exact.
// GET /served?quietMs=N (asked at the pod's address, not through Traefik) answers how many requests
// it has served once none has arrived for N ms: a mirror's copies arrive after the client's answers.
import http from 'node:http'
import {parseArgs} from 'node:util'

const {values} = parseArgs({options: {name: {type: 'string'}, port: {type: 'string', default: '8080'}, 'error-percent': {type: 'string', default: '0'}}})
const name = values.name ?? 'app'
const errorPercent = Number(values['error-percent'])
let served = 0
let lastServedAt = Date.now()

/** Answers the count once the backend has been quiet for `quietMs` (at most 30 s later). */
function answerWhenQuiet(response, quietMs, deadline) {
  const quietFor = Date.now() - lastServedAt
  if (quietFor >= quietMs || Date.now() >= deadline) {
    response.writeHead(200, {'content-type': 'application/json'})
    response.end(`${JSON.stringify({served, quietForMs: quietFor})}\n`)
    return
  }
  setTimeout(() => answerWhenQuiet(response, quietMs, deadline), quietMs - quietFor)
}

const server = http.createServer((request, response) => {
  if (request.url === '/healthz') {
    response.end('ok\n')
    return
  }
  const url = new URL(request.url ?? '/', 'http://backend')
  if (url.pathname === '/served') {
    answerWhenQuiet(response, Number(url.searchParams.get('quietMs') ?? 0), Date.now() + 30_000)
    return
  }
  served++
  lastServedAt = Date.now()
  const fails = Math.floor((served * errorPercent) / 100) > Math.floor(((served - 1) * errorPercent) / 100)
  response.writeHead(fails ? 500 : 200, {'content-type': 'text/plain', 'x-version': name})
  response.end(`${name}\n`)
})
server.keepAliveTimeout = 60_000
server.listen(Number(values.port), '0.0.0.0', () => console.log(`backend ${name} listening on :${values.port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
