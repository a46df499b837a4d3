/**
 * Messages between the cluster primary (admin API, config) and its workers (data plane).
 * A worker says `hello` once its listener is installed (ESM loads asynchronously and IPC messages
 * sent earlier would be lost); the primary then sends `start` once, then `call`s, each answered by
 * exactly one `reply`.
 */
import type {CanaryErrorJson} from '../errors.js'
import type {ProxyConfig} from './config.js'
import type {ServiceState} from './state.js'
import type {CounterSnapshot} from './traffic-stats.js'

/** Calls a worker answers. */
export type WorkerCall =
  | {method: 'apply'; config: ProxyConfig; generation: number}
  | {method: 'setWeights'; service: string; weights: Record<string, number>}
  | {method: 'services'}
  | {method: 'counters'}
  | {method: 'window'; service: string; versions: string[]; sinceMs: number; untilMs: number}
  | {method: 'drain'}

/** What each call resolves to. */
export interface WorkerResults {
  apply: {generation: number}
  setWeights: ServiceState
  services: Record<string, ServiceState>
  counters: CounterSnapshot
  window: Record<string, number[]>
  drain: {drained: true}
}

export type PrimaryMessage = {type: 'start'; config: ProxyConfig; generation: number; retentionSeconds?: number; listen?: string} | {type: 'call'; id: number; call: WorkerCall}

export type WorkerMessage =
  | {type: 'hello'}
  | {type: 'ready'; host: string; port: number}
  /** `errorJson`: the CanaryError's `--json` shape, so the primary fails with the same code (e.g. E_ADDRESS_IN_USE). */
  | {type: 'failed'; error: string; errorJson?: CanaryErrorJson}
  /** The control plane validated the call before sending it, so an error here is the worker's own failure (500). */
  | {type: 'reply'; id: number; result?: unknown; error?: {message: string}}
