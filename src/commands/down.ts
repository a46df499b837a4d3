import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import type {DownReport} from '../cli/target-registry.js'
import {openSession} from '../cli/session.js'

export default class Down extends BaseCommand<DownReport> {
  static override summary = 'Stop everything the release started on this machine and remove its state.'

  static override description = 'Stops the proxy daemon, the stable and canary processes, and removes .canary/<release>/. Safe to run at any time, also when the daemon already died.'

  static override examples = [{description: 'Clean up the release in ./canary.yaml.', command: '<%= config.bin %> down'}]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
  }

  async run(): Promise<DownReport> {
    const {args, flags} = await this.parse(Down)
    const session = await openSession(flags.file, args.name, undefined, sessionOverrides(flags))
    const report = await session.ports.down(new AbortController().signal)
    if (!this.jsonEnabled()) {
      for (const line of report.stopped) this.log(`stopped ${line}`)
      if (report.stopped.length === 0) this.log(`nothing of release ${session.name} was running`)
    }
    return report
  }
}
