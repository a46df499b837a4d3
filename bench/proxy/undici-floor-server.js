// Reference "floor": the fastest Node proxy design measured when the proxy was designed:
// node:http server + one undici Pool per upstream + pool.stream() into the response, smooth WRR,
// hop-by-hop strip, and nothing else (no routing, overrides, health, metrics or access log).
// It shows what Node's own HTTP stack costs on this machine, so canary's figures can be read
// against the best any Node data plane can do, not only against nginx.
import http from 'node:http'

import {Pool} from 'undici'

import {smoothWeightedRoundRobin} from './smooth-wrr.js'

const [port, ...targets] = process.argv.slice(2)
const upstreams = targets.map((t) => {
  const [origin, weight] = t.split('=')
  return {pool: new Pool(origin, {connections: 128, pipelining: 1}), weight: Number(weight)}
})
const pick = smoothWeightedRoundRobin(upstreams)
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate'])
function strip(headers) {
  const out = {}
  for (const k in headers) if (!HOP.has(k)) out[k] = headers[k]
  return out
}
http.createServer((req, res) => {
  const opts = {path: req.url, method: req.method, headers: strip(req.headers), body: req.method === 'GET' || req.method === 'HEAD' ? null : req}
  pick().pool.stream(opts, ({statusCode, headers}) => {
    res.writeHead(statusCode, strip(headers))
    return res
  }, (err) => {
    if (err) {
      if (!res.headersSent) res.statusCode = 502
      res.end()
    }
  })
}).listen(Number(port), '127.0.0.1', 4096, () => {
  process.stdout.write('listening\n')
})
