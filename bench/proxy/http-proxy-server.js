// The `http-proxy` package as a weighted (smooth WRR) 80/20 proxy.
import http from 'node:http'

import httpProxy from 'http-proxy'

import {smoothWeightedRoundRobin} from './smooth-wrr.js'

const [port, ...targets] = process.argv.slice(2)
const upstreams = targets.map((t) => {
  const [origin, weight] = t.split('=')
  return {origin, weight: Number(weight)}
})
const pick = smoothWeightedRoundRobin(upstreams)
const agent = new http.Agent({keepAlive: true, maxSockets: 256, maxFreeSockets: 256})
const proxy = httpProxy.createProxyServer({agent})
proxy.on('error', (err, req, res) => {
  if (!res.headersSent) res.statusCode = 502
  res.end()
})
http.createServer((req, res) => proxy.web(req, res, {target: pick().origin})).listen(Number(port), '127.0.0.1', 4096, () => {
  process.stdout.write('listening\n')
})
