/**
 * Weighted round robin as Earliest Deadline First on a binary min-heap (Traefik's wrr.go idea,
 * https://en.wikipedia.org/wiki/Earliest_deadline_first_scheduling). Each entry's deadline advances
 * by 1/weight when it is picked, so over N picks an entry with weight w out of total W is chosen
 * N·w/W times, ±1. No clock and no randomness: ties break on insertion order, so tests can assert
 * exact counts. The search for an available entry is bounded by the number of entries (Traefik's
 * loop can spin when everything is down; this one returns undefined).
 */
/**
 * Largest weight a version may have, in the config and through the admin API. Weights are relative,
 * so a million to one is finer than any rollout needs, and sums of them stay exact in a double.
 */
export const MAX_WEIGHT = 1_000_000

export class EdfBalancer<T> {
  private readonly heap: EdfEntry<T>[] = []
  private currentDeadline = 0
  private sequence = 0

  /** Adds an item; non-positive weights are meaningless for WRR and are ignored. */
  add(item: T, weight: number): void {
    if (!(weight > 0)) return
    const entry = {item, weight, deadline: this.currentDeadline + 1 / weight, order: this.sequence++}
    this.heap.push(entry)
    this.siftUp(this.heap.length - 1)
  }

  get size(): number {
    return this.heap.length
  }

  /** The next item for which `isAvailable` is true, or undefined after one pass over all entries. */
  pick(isAvailable: (item: T) => boolean): T | undefined {
    const tries = this.heap.length
    for (let i = 0; i < tries; i++) {
      const entry = this.heap[0]
      if (entry === undefined) return undefined
      // The picked entry's deadline is the scheduler's "now": a later add competes fairly.
      this.currentDeadline = entry.deadline
      entry.deadline += 1 / entry.weight
      this.siftDown(0)
      if (isAvailable(entry.item)) return entry.item
    }
    return undefined
  }

  private less(a: EdfEntry<T>, b: EdfEntry<T>): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order)
  }

  private siftUp(index: number): void {
    const heap = this.heap
    let i = index
    while (i > 0) {
      const parent = (i - 1) >> 1
      const node = heap[i]!
      const up = heap[parent]!
      if (!this.less(node, up)) break
      heap[i] = up
      heap[parent] = node
      i = parent
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap
    const n = heap.length
    let i = index
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < n && this.less(heap[left]!, heap[smallest]!)) smallest = left
      if (right < n && this.less(heap[right]!, heap[smallest]!)) smallest = right
      if (smallest === i) return
      const tmp = heap[i]!
      heap[i] = heap[smallest]!
      heap[smallest] = tmp
      i = smallest
    }
  }
}

interface EdfEntry<T> {
  readonly item: T
  readonly weight: number
  deadline: number
  readonly order: number
}
