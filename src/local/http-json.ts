/**
 * Small JSON-over-HTTP calls to the daemon and the proxy admin API on loopback. `node:http` with
 * the global keep-alive agent instead of `fetch`: fetch loads undici on first use (~30 ms of every
 * CLI start), and these calls are all tiny.
 */
import {request} from 'node:http'

/** A finished call: status and body text. */
export interface HttpReply {
  readonly status: number
  readonly text: string
}

/** One call; rejects on connection errors, timeouts and aborts (never on an HTTP status). */
export function httpCall(method: string, url: string, options: {readonly token?: string; readonly body?: unknown; readonly timeoutMs: number; readonly signal: AbortSignal}): Promise<HttpReply> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method,
      signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]),
      headers: {
        ...(options.token === undefined ? {} : {authorization: `Bearer ${options.token}`}),
        ...(payload === undefined ? {} : {'content-type': 'application/json', 'content-length': Buffer.byteLength(payload)}),
      },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}
