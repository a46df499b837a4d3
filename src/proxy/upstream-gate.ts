/**
 * The per-origin cap on concurrent upstream requests (`limits.upstreamConnections`; one request
 * per connection) made explicit. A request beyond the cap waits in a FIFO of at most
 * `limits.upstreamQueue` entries for at most `timeouts.upstreamQueueMs`; a full queue or an expired
 * wait is refused (the caller answers 503), never an endless hang. undici's own pool queue, which
 * has neither a bound nor a timeout, therefore stays empty.
 */

/** Why a request was not admitted. */
export type GateRefusal = 'queue_full' | 'queue_timeout'

/** What waits for a connection: told once, either admitted or refused. */
export interface GateWaiter {
  admitted(gate: UpstreamGate): void
  refused(reason: GateRefusal): void
}

interface QueueEntry {
  readonly waiter: GateWaiter
  readonly deadlineMs: number
  cancelled: boolean
}

/** Returned by `enter` while a waiter is queued, so it can leave the queue (its client went away). */
export interface QueuedTicket {
  cancel(): void
}

export class UpstreamGate {
  /** Requests holding a connection now. */
  active = 0
  private queue: QueueEntry[] = []
  private head = 0
  /** Entries in the queue that are not cancelled. */
  private waiting = 0
  private timer: NodeJS.Timeout | undefined
  private onIdle: (() => void) | undefined

  constructor(
    readonly limit: number,
    readonly maxQueue: number,
    readonly queueTimeoutMs: number,
  ) {}

  /** Requests waiting for a connection now. */
  get queued(): number {
    return this.waiting
  }

  /**
   * Admits `waiter` now (calls `admitted` synchronously and returns undefined), queues it (returns
   * a ticket), or refuses it at once with 'queue_full' (calls `refused`, returns undefined).
   */
  enter(waiter: GateWaiter): QueuedTicket | undefined {
    if (this.active < this.limit && this.waiting === 0) {
      this.active++
      waiter.admitted(this)
      return undefined
    }
    if (this.waiting >= this.maxQueue) {
      waiter.refused('queue_full')
      return undefined
    }
    const entry: QueueEntry = {waiter, deadlineMs: Date.now() + this.queueTimeoutMs, cancelled: false}
    this.queue.push(entry)
    this.waiting++
    this.timer ??= this.schedule(this.queueTimeoutMs)
    return {
      cancel: () => {
        if (entry.cancelled) return
        entry.cancelled = true
        this.waiting--
        this.checkIdle()
      },
    }
  }

  /** Admits only when a connection is free and nobody waits (mirrors and probes never queue). */
  tryEnter(): boolean {
    if (this.active >= this.limit || this.waiting > 0) return false
    this.active++
    return true
  }

  /** One admitted request is done with its connection: the next waiter gets it. */
  leave(): void {
    this.active--
    while (this.active < this.limit) {
      const entry = this.shift()
      if (entry === undefined) break
      this.active++
      entry.waiter.admitted(this)
    }
    this.checkIdle()
  }

  /**
   * Calls `callback` once nothing holds or waits for a connection (at once when idle). A reload
   * that replaces the pool closes the old one only then: its waiters still get their connection.
   */
  whenIdle(callback: () => void): void {
    this.onIdle = callback
    this.checkIdle()
  }

  private checkIdle(): void {
    if (this.onIdle === undefined || this.active !== 0 || this.waiting !== 0) return
    const callback = this.onIdle
    this.onIdle = undefined
    callback()
  }

  private shift(): QueueEntry | undefined {
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head++]!
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
      if (entry.cancelled) continue
      entry.cancelled = true
      this.waiting--
      return entry
    }
    return undefined
  }

  private schedule(delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.expire(), Math.max(1, delayMs))
    timer.unref()
    return timer
  }

  /** Refuses every waiter whose time is up; entries share one timeout, so they expire in order. */
  private expire(): void {
    this.timer = undefined
    const now = Date.now()
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!
      if (!entry.cancelled && entry.deadlineMs > now) break
      this.head++
      if (entry.cancelled) continue
      entry.cancelled = true
      this.waiting--
      entry.waiter.refused('queue_timeout')
    }
    this.checkIdle()
    if (this.head === this.queue.length) {
      this.queue = []
      this.head = 0
    } else {
      this.timer = this.schedule(this.queue[this.head]!.deadlineMs - now)
    }
  }
}
