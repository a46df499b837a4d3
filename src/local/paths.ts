/** Where one release keeps its local files: `.canary/<release>/` beside the spec file. */
import {dirname, join, resolve} from 'node:path'

/** Files of one release's local run. */
export interface ReleasePaths {
  readonly dir: string
  readonly state: string
  readonly operationLock: string
  /** The daemon's address book: pid, control, proxy and admin URLs (written once it is ready). */
  readonly daemon: string
  /** Why the daemon failed to start, when it did. */
  readonly daemonError: string
  readonly daemonLog: string
  readonly adminToken: string
  readonly proxyConfig: string
  /** Process groups of the replicas the daemon runs, so `canary down` can stop them even after the daemon died. */
  readonly replicaGroups: string
  readonly logs: string
}

/** The local files of `release` for the spec at `specFile`. */
export function releasePaths(specFile: string, release: string): ReleasePaths {
  const dir = join(dirname(resolve(specFile)), '.canary', release)
  return {
    dir,
    state: join(dir, 'state.json'),
    operationLock: join(dir, 'operation.lock'),
    daemon: join(dir, 'daemon.json'),
    daemonError: join(dir, 'daemon-error.json'),
    daemonLog: join(dir, 'daemon.log'),
    adminToken: join(dir, 'admin-token'),
    proxyConfig: join(dir, 'proxy.yaml'),
    replicaGroups: join(dir, 'replica-groups.json'),
    logs: join(dir, 'logs'),
  }
}
