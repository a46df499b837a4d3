import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {releaseArgs, releaseFlags} from '../cli/release-flags.js'
import {promoteRollout, type RolloutStatus} from '../rollout/services.js'

export default class Promote extends BaseCommand<RolloutStatus> {
  static override summary = 'Make the canary the new stable version and send it all traffic.'

  static override description = 'Behind the same analysis check as `step` (exit 10 failing, 13 not enough data) unless --force. The old stable version is stopped; sticky cookies stop pinning it.'

  static override examples = [
    {description: 'Promote the canary of the release in ./canary.yaml.', command: '<%= config.bin %> promote'},
    {description: 'Promote without waiting for the analysis.', command: '<%= config.bin %> promote my-app --force'},
  ]

  static override args = releaseArgs

  static override flags = {
    ...releaseFlags,
    force: Flags.boolean({summary: 'Skip the analysis check.'}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Promote)
    const session = await this.openRelease(flags, args.name)
    const status = await promoteRollout(session, {force: flags.force, signal: this.signal})
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 3))
    return status
  }
}
