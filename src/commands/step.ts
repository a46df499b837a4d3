import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import {UsageError} from '../errors.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {stepRollout, type RolloutStatus} from '../rollout/services.js'
import {openSession} from '../cli/session.js'
import {parseDurationMs} from '../release/duration.js'

export default class Step extends BaseCommand<RolloutStatus> {
  static override summary = 'Advance the rollout to its next step, or set a canary weight now.'

  static override description = 'Before sending more traffic it judges the canary over the current window: a failing canary is refused (exit 10), not enough data is refused (exit 13); --force skips the check, --wait waits for enough data. Lowering the weight is never refused.'

  static override examples = [
    {description: 'Go to the next step of the plan.', command: '<%= config.bin %> step'},
    {description: 'Send 30 % of the traffic to the canary now.', command: '<%= config.bin %> step my-app --weight 30'},
    {description: 'Wait up to 2 minutes for enough data, then step.', command: '<%= config.bin %> step --wait --timeout 2m'},
  ]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
    weight: Flags.integer({summary: 'Set this canary weight (0 to spec.totalWeight) instead of the next step.', min: 0}),
    force: Flags.boolean({summary: 'Skip the analysis check.'}),
    wait: Flags.boolean({summary: 'When there is not enough data yet, wait for it instead of exiting 13.'}),
    timeout: Flags.string({summary: 'With --wait: give up after this long (e.g. 2m).', dependsOn: ['wait']}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Step)
    const timeoutMs = flags.timeout === undefined ? undefined : parseDurationMs(flags.timeout)
    if (flags.timeout !== undefined && timeoutMs === undefined) throw new UsageError(`--timeout ${flags.timeout}: not a duration`, {suggestions: ['Use e.g. 30s, 2m or 1h30m.']})
    const session = await openSession(flags.file, args.name, undefined, sessionOverrides(flags))
    const status = await stepRollout(session, {
      ...(flags.weight === undefined ? {} : {weight: flags.weight}),
      force: flags.force,
      wait: flags.wait,
      ...(timeoutMs === undefined ? {} : {timeoutMs}),
      signal: new AbortController().signal,
    })
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 3))
    return status
  }
}
