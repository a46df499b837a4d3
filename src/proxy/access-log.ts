/**
 * Access log: one JSON object per request, buffered so the write does not dominate the hot path
 * (flushed at 64 KiB or every 250 ms, and synchronously on close). `-` writes to stdout.
 */
import {closeSync, openSync, write, writeSync} from 'node:fs'

const FLUSH_BYTES = 64 * 1024
const FLUSH_INTERVAL_MS = 250
/** Characters JSON.stringify would escape: quote, backslash, controls, and (lone) surrogates. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/**
 * `value` as a JSON string. Most values (addresses, methods, ordinary paths) need no escaping, and
 * a regex test plus concatenation costs a fraction of JSON.stringify (~150 ns per call in Node 20).
 */
export function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

/** The fields of one access-log line. */
export interface AccessLogEntry {
  readonly timeMs: number
  readonly client: string
  readonly method: string
  readonly host: string
  readonly path: string
  readonly status: number
  readonly durationMs: number
  readonly route: string
  readonly service: string
  readonly version: string
  readonly upstream: string
  readonly bytes: number
  readonly retries: number
}

/** A non-negative duration with exactly three decimals, like toFixed(3) at a sixth of its cost. */
export function millis3(ms: number): string {
  const micros = Math.round(ms * 1000)
  const fraction = micros % 1000
  return `${(micros - fraction) / 1000}.${fraction < 10 ? '00' : fraction < 100 ? '0' : ''}${fraction}`
}

/** A buffered JSON-lines writer. */
export class AccessLog {
  private buffer = ''
  private writing = false
  private readonly fd: number
  private readonly timer: NodeJS.Timeout
  /** The current second's ISO prefix ("2026-11-21T10:30:26."): one Date per second, not per line. */
  private isoSecond = -1
  private isoPrefix = ''
  /** JSON-quoted route, service, version and upstream names; they come from the config, so the set stays small. */
  private readonly quoted = new Map<string, string>()

  constructor(readonly path: string) {
    this.fd = path === '-' ? 1 : openSync(path, 'a')
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS)
    this.timer.unref()
  }

  log(e: AccessLogEntry): void {
    // Hand-built JSON: client-controlled strings are escaped by jsonString; config names are
    // quoted once and reused.
    this.buffer += `{"time":"${this.timeOf(e.timeMs)}","client":${jsonString(e.client)},"method":${jsonString(e.method)},"host":${jsonString(e.host)},"path":${jsonString(e.path)},"status":${e.status},"duration_ms":${millis3(e.durationMs)},"route":${this.quote(e.route)},"service":${this.quote(e.service)},"version":${this.quote(e.version)},"upstream":${this.quote(e.upstream)},"bytes":${e.bytes},"retries":${e.retries}}\n`
    if (this.buffer.length >= FLUSH_BYTES) this.flush()
  }

  /** `timeMs` (integer epoch ms) as ISO 8601 with milliseconds, e.g. 2026-11-21T10:30:26.512Z. */
  private timeOf(timeMs: number): string {
    const second = Math.floor(timeMs / 1000)
    if (second !== this.isoSecond) {
      this.isoSecond = second
      this.isoPrefix = new Date(second * 1000).toISOString().slice(0, 20)
    }
    const ms = timeMs - second * 1000
    return `${this.isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`
  }

  private quote(name: string): string {
    let quoted = this.quoted.get(name)
    if (quoted === undefined) this.quoted.set(name, (quoted = JSON.stringify(name)))
    return quoted
  }

  /** Starts an asynchronous write of everything buffered, unless one is in progress. */
  flush(): void {
    if (this.writing || this.buffer === '') return
    const chunk = Buffer.from(this.buffer)
    this.buffer = ''
    this.writing = true
    write(this.fd, chunk, 0, chunk.length, null, () => {
      this.writing = false
      if (this.buffer.length >= FLUSH_BYTES) this.flush()
    })
  }

  /** Writes what is left synchronously and closes the file. */
  close(): void {
    clearInterval(this.timer)
    if (this.buffer !== '') {
      try {
        writeSync(this.fd, this.buffer)
      } catch {
        // The log is best effort at shutdown; losing the tail must not block exit.
      }
      this.buffer = ''
    }
    if (this.fd !== 1) {
      const fd = this.fd
      // Let an in-flight asynchronous write finish before closing its descriptor.
      const closeWhenIdle = () => (this.writing ? setTimeout(closeWhenIdle, 5) : closeSync(fd))
      closeWhenIdle()
    }
  }
}
