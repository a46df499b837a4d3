/**
 * `startProxy(config, options)`: the bundled reverse proxy in this process (the local release
 * daemon and the tests use it). The control plane (control.ts) drives one ProxyInstance directly:
 * it binds the data plane and the admin API (port 0 works), reloads on demand, on SIGHUP and on
 * file changes (options), and `close()` drains in-flight requests. `canary proxy` runs the same
 * control plane over worker processes instead (cluster.ts).
 */
import type {ProxyConfig} from './config.js'
import type {BoundAddress} from './address.js'
import {ProxyControl, type ControlOptions} from './control.js'
import {ProxyInstance} from './proxy-instance.js'
import type {ProxyState, ServiceState} from './state.js'

/** Options of startProxy; everything is optional. */
export type StartProxyOptions = ControlOptions

/** A proxy running in this process. */
export interface RunningProxy {
  /** Data-plane address actually bound. */
  readonly address: BoundAddress
  /** Admin API address actually bound. */
  readonly adminAddress: BoundAddress
  /** `http://host:port` of the data plane (`https://` with `tls:`). */
  readonly url: string
  /** The plain-HTTP listener that redirects to https (`tls.redirect`), if any. */
  readonly redirectAddress?: BoundAddress
  /** `http://host:port` of the admin API. */
  readonly adminUrl: string
  readonly generation: number
  /** Swaps in `config`, or re-reads the config file when omitted; resolves with the new generation. Throws ConfigError and keeps the old config. */
  reload(config?: ProxyConfig): Promise<number>
  /** Same as PUT /api/services/{service}/weights. Throws AdminRequestError. */
  setWeights(service: string, weights: Readonly<Record<string, number>>): ServiceState
  state(): ProxyState
  /** Resolves once the proxy stopped: after SIGTERM/SIGINT (handleSignals) or close(). */
  readonly closed: Promise<void>
  /** Stops accepting, drains in-flight requests (up to timeouts.drainMs), closes everything. */
  close(): Promise<void>
}

export async function startProxy(initial: ProxyConfig, options: StartProxyOptions = {}): Promise<RunningProxy> {
  const control = new ProxyControl(initial, options, () => new ProxyInstance(initial, 1, options.retentionSeconds))
  await control.start()
  const plane = control.plane
  return {
    address: control.address,
    adminAddress: control.adminAddress,
    ...(control.redirectAddress === undefined ? {} : {redirectAddress: control.redirectAddress}),
    url: control.url,
    adminUrl: control.adminUrl,
    get generation() {
      return control.generation
    },
    reload: (config) => control.reload(config),
    // In process the data plane answers at once, so these two stay synchronous.
    setWeights: (service, weights) => plane.setWeights(service, control.acceptWeights(service, weights)),
    state: () => control.state(plane.services()),
    closed: control.closed,
    close: () => control.close(),
  }
}
