import {BaseCommand} from '../cli/base-command.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {releaseArgs, releaseFlags} from '../cli/release-flags.js'
import {abortRollout, type RolloutStatus} from '../rollout/services.js'

export default class Abort extends BaseCommand<RolloutStatus> {
  static override summary = 'Send all traffic back to stable at once and stop the canary.'

  static override description = 'Idempotent: aborting a rollout that already ended prints its status and exits 0.'

  static override examples = [{description: 'Abort the rollout of the release in ./canary.yaml.', command: '<%= config.bin %> abort'}]

  static override args = releaseArgs

  static override flags = releaseFlags

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Abort)
    const session = await this.openRelease(flags, args.name)
    const status = await abortRollout(session, {signal: this.signal})
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 3))
    return status
  }
}
