/**
 * Access log: one JSON object per request, buffered so the write does not dominate the hot path
 * (flushed at 64 KiB or every 250 ms, and synchronously on close). `-` writes to stdout.
 */
import {closeSync, openSync, write, writeSync} from 'node:fs'

const FLUSH_BYTES = 64 * 1024
const FLUSH_INTERVAL_MS = 250

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

/** A buffered JSON-lines writer. */
export class AccessLog {
  private buffer = ''
  private writing = false
  private readonly fd: number
  private readonly timer: NodeJS.Timeout
  private isoMs = 0
  private iso = ''

  constructor(readonly path: string) {
    this.fd = path === '-' ? 1 : openSync(path, 'a')
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS)
    this.timer.unref()
  }

  log(e: AccessLogEntry): void {
    if (e.timeMs !== this.isoMs) {
      this.isoMs = e.timeMs
      this.iso = new Date(e.timeMs).toISOString()
    }
    // Hand-built JSON: only the client-controlled strings go through JSON.stringify for escaping.
    this.buffer += `{"time":"${this.iso}","client":${JSON.stringify(e.client)},"method":${JSON.stringify(e.method)},"host":${JSON.stringify(e.host)},"path":${JSON.stringify(e.path)},"status":${e.status},"duration_ms":${e.durationMs.toFixed(3)},"route":${JSON.stringify(e.route)},"service":${JSON.stringify(e.service)},"version":${JSON.stringify(e.version)},"upstream":${JSON.stringify(e.upstream)},"bytes":${e.bytes},"retries":${e.retries}}\n`
    if (this.buffer.length >= FLUSH_BYTES) this.flush()
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
