import {BaseCommand} from '../cli/base-command.js'
import {releaseArgs, releaseFlags} from '../cli/release-flags.js'
import type {DownReport} from '../rollout/ports.js'
import {downRelease} from '../rollout/services.js'

export default class Down extends BaseCommand<DownReport> {
  static override summary = 'Stop everything the release started on this machine and remove its state.'

  static override description = 'Stops the proxy daemon, the stable and canary processes, and removes .canary/<release>/. Safe to run at any time, also when the daemon already died.'

  static override examples = [{description: 'Clean up the release in ./canary.yaml.', command: '<%= config.bin %> down'}]

  static override args = releaseArgs

  static override flags = releaseFlags

  async run(): Promise<DownReport> {
    const {args, flags} = await this.parse(Down)
    const session = await this.openRelease(flags, args.name)
    const report = await downRelease(session, {signal: this.signal})
    if (!this.jsonEnabled()) {
      for (const line of report.stopped) this.log(`stopped ${line}`)
      if (report.stopped.length === 0) this.log(`nothing of release ${session.name} was running`)
    }
    return report
  }
}
