import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {abortRollout, type RolloutStatus} from '../rollout/services.js'
import {openSession} from '../cli/session.js'

export default class Abort extends BaseCommand<RolloutStatus> {
  static override summary = 'Send all traffic back to stable at once and stop the canary.'

  static override description = 'Idempotent: aborting a rollout that already ended prints its status and exits 0.'

  static override examples = [{description: 'Abort the rollout of the release in ./canary.yaml.', command: '<%= config.bin %> abort'}]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Abort)
    const session = await openSession(flags.file, args.name, undefined, sessionOverrides(flags))
    const status = await abortRollout(session, {signal: new AbortController().signal})
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 3))
    return status
  }
}
