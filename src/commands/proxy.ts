import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {loadProxyConfig} from '../proxy/config.js'

/** `canary proxy --json` result (printed when the proxy stops, or at once with --check). */
export interface ProxyCommandResult {
  config: string
  checked: boolean
  listen?: string
  admin?: string
  workers?: number
  generation?: number
}

export default class Proxy extends BaseCommand<ProxyCommandResult> {
  static override summary = 'Run the bundled reverse proxy: weighted canary routing, overrides, metrics and an admin API.'

  static override description = `Runs in the foreground until SIGTERM/SIGINT (drains in-flight requests first). A small primary process owns the admin API and the config; --workers data-plane processes (default 1) share the listening port, and one that dies is replaced. Once ready it prints one JSON line on stdout (pid is the primary's):
  {"msg":"listening","listen":"127.0.0.1:8080","admin":"127.0.0.1:9901","pid":1234,"workers":1,"url":"http://127.0.0.1:8080"}
(with \`tls:\` the url is https:// and "redirect" names the plain listener that redirects to it, if configured)
Operational events (reloads, errors) are JSON lines on stderr. SIGHUP or a change to the config file reloads it; an invalid file is refused and the old config keeps serving. The file format and the admin API are in docs/proxy.md.`

  static override examples = [
    {description: 'Run the proxy from a config file.', command: '<%= config.bin %> proxy --config proxy.yaml'},
    {description: 'Run two worker processes on the same port.', command: '<%= config.bin %> proxy --config proxy.yaml --workers 2'},
    {description: 'Only validate the file (exit 3 with located problems when invalid).', command: '<%= config.bin %> proxy --config proxy.yaml --check'},
  ]

  static override flags = {
    config: Flags.string({char: 'c', summary: 'Proxy config file (YAML).', required: true}),
    workers: Flags.integer({char: 'w', summary: 'Worker processes sharing the port (node:cluster).', default: 1, min: 1, max: 64}),
    check: Flags.boolean({summary: 'Validate the config file and exit.'}),
    'follow-config-map': Flags.string({summary: 'In a cluster: also follow this ConfigMap (NAMESPACE/NAME, key proxy.yaml) through the API and apply each change at once (#5).'}),
  }

  async run(): Promise<ProxyCommandResult> {
    const {flags} = await this.parse(Proxy)
    const config = await loadProxyConfig(flags.config)
    if (flags.check) {
      if (!this.jsonEnabled()) this.log(`${flags.config}: ok (${config.routes.length} routes, ${Object.keys(config.services).length} services)`)
      return {config: flags.config, checked: true}
    }
    const options = {configFile: flags.config, watchConfig: true, handleSignals: true}
    // Always primary + workers, even for one: the worker gets bounded-heap flags and crash restarts.
    const {startProxyCluster} = await import('../proxy/cluster.js')
    const proxy = await startProxyCluster(config, {...options, workers: flags.workers})
    const listen = `${proxy.address.host}:${proxy.address.port}`
    const admin = `${proxy.adminAddress.host}:${proxy.adminAddress.port}`
    const redirect = proxy.redirectAddress === undefined ? {} : {redirect: `${proxy.redirectAddress.host}:${proxy.redirectAddress.port}`}
    process.stdout.write(`${JSON.stringify({msg: 'listening', listen, admin, pid: process.pid, workers: flags.workers, url: proxy.url, ...redirect})}\n`)
    const follow = new AbortController()
    if (flags['follow-config-map'] !== undefined) {
      const {followConfigMapIntoProxy} = await import('../routers/proxy/config-sync.js')
      await followConfigMapIntoProxy(flags['follow-config-map'], proxy, follow.signal)
      void proxy.closed.then(() => follow.abort())
    }
    await proxy.closed
    return {config: flags.config, checked: false, listen, admin, workers: flags.workers, generation: proxy.generation}
  }
}
