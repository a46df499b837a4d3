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

  static override description = `Runs in the foreground until SIGTERM/SIGINT (drains in-flight requests first). Once ready it prints one JSON line on stdout:
  {"msg":"listening","listen":"127.0.0.1:8080","admin":"127.0.0.1:9901","pid":1234,"workers":1}
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
  }

  async run(): Promise<ProxyCommandResult> {
    const {flags} = await this.parse(Proxy)
    const config = await loadProxyConfig(flags.config)
    if (flags.check) {
      if (!this.jsonEnabled()) this.log(`${flags.config}: ok (${config.routes.length} routes, ${Object.keys(config.services).length} services)`)
      return {config: flags.config, checked: true}
    }
    const options = {configFile: flags.config, watchConfig: true, handleSignals: true}
    const proxy = flags.workers > 1 ? await (await import('../proxy/cluster.js')).startProxyCluster(config, {...options, workers: flags.workers}) : await (await import('../proxy/server.js')).startProxy(config, options)
    const listen = `${proxy.address.host}:${proxy.address.port}`
    const admin = `${proxy.adminAddress.host}:${proxy.adminAddress.port}`
    process.stdout.write(`${JSON.stringify({msg: 'listening', listen, admin, pid: process.pid, workers: flags.workers})}\n`)
    await proxy.closed
    return {config: flags.config, checked: false, listen, admin, workers: flags.workers, generation: proxy.generation}
  }
}
