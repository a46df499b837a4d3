/**
 * `startProxy(config, options)`: the bundled reverse proxy in this process (the local release
 * daemon and the tests use it). The control plane (control.ts) drives one ProxyInstance directly:
 * it binds the data plane and the admin API (port 0 works), reloads on demand, on SIGHUP and on
 * file changes (options), and `close()` drains in-flight requests. `canary proxy` runs the same
 * control plane over worker processes instead (cluster.ts).
 */
import type {ProxyConfig} from './config.js'
import {ProxyControl, type ControlOptions, type RunningProxyBase} from './control.js'
import {ProxyInstance} from './proxy-instance.js'
import type {ProxyState, ServiceState} from './state.js'

/** Options of startProxy; everything is optional. */
export type StartProxyOptions = ControlOptions

/** A proxy running in this process. */
export interface RunningProxy extends RunningProxyBase {
  /** Same as PUT /api/services/{service}/weights. Throws AdminRequestError. */
  setWeights(service: string, weights: Readonly<Record<string, number>>): ServiceState
  state(): ProxyState
}

export async function startProxy(initial: ProxyConfig, options: StartProxyOptions = {}): Promise<RunningProxy> {
  const control = new ProxyControl(initial, options, () => new ProxyInstance(initial, 1, options.retentionSeconds))
  await control.start()
  const plane = control.plane
  // In process the data plane answers at once, so these two stay synchronous.
  return Object.assign(control.running(), {
    setWeights: (service: string, weights: Readonly<Record<string, number>>) => plane.setWeights(service, control.acceptWeights(service, weights)),
    state: () => control.state(plane.services()),
  })
}
