// A small Node upstream for the reliability script: answers its name; `node upstream.js PORT NAME`.
import {createServer} from 'node:http'

const [port, name] = process.argv.slice(2)
const body = `${name}\n`
createServer((req, res) => {
  req.resume()
  res.writeHead(200, {'content-type': 'text/plain', 'content-length': body.length})
  res.end(body)
}).listen(Number(port), '127.0.0.1', 4096, () => process.stdout.write('listening\n'))
