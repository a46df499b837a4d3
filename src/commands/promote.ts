import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {promoteRollout, type RolloutStatus} from '../rollout/services.js'
import {openSession} from '../cli/session.js'

export default class Promote extends BaseCommand<RolloutStatus> {
  static override summary = 'Make the canary the new stable version and send it all traffic.'

  static override description = 'Behind the same analysis check as `step` (exit 10 failing, 13 not enough data) unless --force. The old stable version is stopped; sticky cookies stop pinning it.'

  static override examples = [
    {description: 'Promote the canary of the release in ./canary.yaml.', command: '<%= config.bin %> promote'},
    {description: 'Promote without waiting for the analysis.', command: '<%= config.bin %> promote my-app --force'},
  ]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
    force: Flags.boolean({summary: 'Skip the analysis check.'}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Promote)
    const session = await openSession(flags.file, args.name, undefined, sessionOverrides(flags))
    const status = await promoteRollout(session, {force: flags.force, signal: new AbortController().signal})
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 3))
    return status
  }
}
