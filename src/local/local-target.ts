/** Target on this machine: the daemon starts, promotes and stops the versions' processes. */
import type {Readiness, Target, Track} from '../rollout/ports.js'
import type {TracksReport} from './daemon.js'
import type {DaemonClient} from './daemon-client.js'

/** Target on this machine, through the release's daemon. */
export class LocalTarget implements Target {
  readonly kind = 'local'

  constructor(private readonly daemon: DaemonClient) {}

  async deployCanary(image: string, signal: AbortSignal): Promise<void> {
    await this.daemon.call('PUT', '/tracks/canary', signal, {image})
  }

  async readiness(track: Track, signal: AbortSignal): Promise<Readiness> {
    const tracks = await this.daemon.call<TracksReport>('GET', '/tracks', signal)
    const report = tracks[track]
    return report === null ? {ready: false, readyReplicas: 0, replicas: 0, reason: `no ${track} version is running`} : report.readiness
  }

  async promote(image: string, signal: AbortSignal): Promise<void> {
    await this.daemon.call('POST', '/promote', signal, {image})
  }

  async removeCanary(signal: AbortSignal): Promise<void> {
    await this.daemon.call('DELETE', '/tracks/canary', signal)
  }
}
