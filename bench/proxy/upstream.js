// A small Node upstream for the reliability script: answers its name; `node upstream.js PORT NAME`.
import {createServer} from 'node:http'

const [port, name] = process.argv.slice(2)
const body = `${name}\n`
const block = Buffer.alloc(64 * 1024, 'x')
createServer((req, res) => {
  req.resume()
  // `/big?bytes=N`: a large answer written with backpressure (slow-reader phase of the reliability script).
  const big = /^\/big\?bytes=(\d+)$/.exec(req.url ?? '')
  if (big !== null) {
    const total = Number(big[1])
    res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': total})
    let sent = 0
    const pump = () => {
      while (sent < total) {
        const chunk = block.subarray(0, Math.min(block.length, total - sent))
        sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    return pump()
  }
  res.writeHead(200, {'content-type': 'text/plain', 'content-length': body.length})
  res.end(body)
}).listen(Number(port), '127.0.0.1', 4096, () => process.stdout.write('listening\n'))
