/**
 * Access log: one JSON object per request, buffered so the write does not dominate the hot path
 * (flushed at 64 KiB or every 250 ms, and on close). `-` writes to stdout.
 *
 * The buffer is bounded (`accessLog.maxBufferBytes`): when the destination does not keep up (a
 * stdout pipe nobody reads, a stalled disk), new lines are dropped and counted rather than held,
 * so memory stays bounded and requests never wait for the log (a data plane favours serving over
 * logging; the count is canary_proxy_access_log_dropped_total). At most one write is in flight.
 */
import {closeSync, openSync, write, writeSync} from 'node:fs'

const FLUSH_BYTES = 64 * 1024
const FLUSH_INTERVAL_MS = 250
/** Default bound of the buffer (accessLog.maxBufferBytes). */
export const DEFAULT_ACCESS_LOG_BUFFER_BYTES = 4 * 1024 * 1024
/** On close, how long to wait for a write in flight before giving up on the rest (a stuck pipe must not block shutdown). */
const CLOSE_WAIT_MS = 1000
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

/** A buffered JSON-lines writer with a bounded buffer. */
export class AccessLog {
  private buffer = ''
  /** Lines in `buffer`, and in the write in flight: counted as dropped if that write fails. */
  private bufferedLines = 0
  private writingLines = 0
  private writing = false
  private closed = false
  private readonly fd: number
  private readonly timer: NodeJS.Timeout
  /** The current second's ISO prefix ("2026-11-21T10:30:26."): one Date per second, not per line. */
  private isoSecond = -1
  private isoPrefix = ''
  /** JSON-quoted route, service, version and upstream names; they come from the config, so the set stays small. */
  private readonly quoted = new Map<string, string>()

  /**
   * @param maxBufferBytes lines that would grow the buffer beyond this are dropped
   * @param onDropped told how many lines were dropped (buffer full, failed write, or unwritten at close)
   */
  constructor(
    readonly path: string,
    private readonly maxBufferBytes: number = DEFAULT_ACCESS_LOG_BUFFER_BYTES,
    private readonly onDropped: (lines: number) => void = () => undefined,
  ) {
    this.fd = path === '-' ? 1 : openSync(path, 'a')
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS)
    this.timer.unref()
  }

  log(e: AccessLogEntry): void {
    if (this.closed) return
    // Hand-built JSON: client-controlled strings are escaped by jsonString; config names are
    // quoted once and reused.
    const line = `{"time":"${this.timeOf(e.timeMs)}","client":${jsonString(e.client)},"method":${jsonString(e.method)},"host":${jsonString(e.host)},"path":${jsonString(e.path)},"status":${e.status},"duration_ms":${millis3(e.durationMs)},"route":${this.quote(e.route)},"service":${this.quote(e.service)},"version":${this.quote(e.version)},"upstream":${this.quote(e.upstream)},"bytes":${e.bytes},"retries":${e.retries}}\n`
    // String length, not bytes: the bound is approximate for non-ASCII paths, which is enough.
    if (this.buffer.length + line.length > this.maxBufferBytes) {
      this.onDropped(1)
      return
    }
    this.buffer += line
    this.bufferedLines++
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
    this.writingLines = this.bufferedLines
    this.buffer = ''
    this.bufferedLines = 0
    this.writing = true
    write(this.fd, chunk, 0, chunk.length, null, (error, written) => {
      this.writing = false
      // A failed write (EAGAIN on a non-blocking pipe, EPIPE, ENOSPC) loses its lines: count them.
      // A short write is counted the same way rather than retried, so a stuck destination never
      // holds more than one chunk.
      if (error !== null || written < chunk.length) this.onDropped(this.writingLines)
      this.writingLines = 0
      if (!this.closed && this.buffer.length >= FLUSH_BYTES) this.flush()
    })
  }

  /**
   * Stops logging: what is buffered is written once the write in flight (if any) is done, waiting
   * at most CLOSE_WAIT_MS; a destination that does not take it by then loses it (counted).
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    const deadline = Date.now() + CLOSE_WAIT_MS
    const finish = () => {
      if (this.writing && Date.now() < deadline) {
        setTimeout(finish, 5).unref()
        return
      }
      if (this.writing) {
        this.onDropped(this.writingLines + this.bufferedLines)
        this.buffer = ''
        this.bufferedLines = 0
        return
      }
      if (this.fd === 1) {
        // stdout may be a pipe: a synchronous write could block the process for good, so the
        // tail goes out asynchronously like every other chunk.
        this.flush()
        return
      }
      if (this.buffer !== '') {
        try {
          writeSync(this.fd, this.buffer)
        } catch {
          this.onDropped(this.bufferedLines)
        }
        this.buffer = ''
        this.bufferedLines = 0
      }
      closeSync(this.fd)
    }
    finish()
  }
}
