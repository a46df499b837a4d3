import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {releaseArgs, releaseFlags, timeoutMsOf} from '../cli/release-flags.js'
import {stepRollout, type RolloutStatus} from '../rollout/services.js'

export default class Step extends BaseCommand<RolloutStatus> {
  static override summary = 'Advance the rollout to its next step, or set a canary weight now.'

  static override description = 'Before sending more traffic it judges the canary over the current window: a failing canary is refused (exit 10), not enough data is refused (exit 13); --force skips the check, --wait waits for enough data. Lowering the weight is never refused.'

  static override examples = [
    {description: 'Go to the next step of the plan.', command: '<%= config.bin %> step'},
    {description: 'Send 30 % of the traffic to the canary now.', command: '<%= config.bin %> step my-app --weight 30'},
    {description: 'Wait up to 2 minutes for enough data, then step.', command: '<%= config.bin %> step --wait --timeout 2m'},
  ]

  static override args = releaseArgs

  static override flags = {
    ...releaseFlags,
    weight: Flags.integer({summary: 'Set this canary weight (0 to spec.totalWeight) instead of the next step.', min: 0}),
    force: Flags.boolean({summary: 'Skip the analysis check.'}),
    wait: Flags.boolean({summary: 'When there is not enough data yet, wait for it instead of exiting 13.'}),
    timeout: Flags.string({summary: 'With --wait: give up after this long (e.g. 2m).', dependsOn: ['wait']}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Step)
    const timeoutMs = timeoutMsOf(flags.timeout)
    const session = await this.openRelease(flags, args.name)
    const status = await stepRollout(session, {
      ...(flags.weight === undefined ? {} : {weight: flags.weight}),
      force: flags.force,
      wait: flags.wait,
      ...(timeoutMs === undefined ? {} : {timeoutMs}),
      signal: this.signal,
    })
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 3))
    return status
  }
}
