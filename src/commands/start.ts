import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import {ProgressPrinter, formatStatus, styleFor} from '../cli/progress.js'
import {startRollout, type RolloutStatus} from '../rollout/services.js'
import {canaryImageFor, openSession} from '../cli/session.js'

export default class Start extends BaseCommand<RolloutStatus> {
  static override summary = 'Start a canary: run the new version, wait until it is ready, move to the first step\'s weight.'

  static override description = 'Starts the proxy daemon and the stable version on demand (local target), then the canary. Refuses (exit 5) while another rollout of the release is in progress. A canary that never becomes ready is stopped again (exit 14).'

  static override examples = [
    {description: 'Start v2 of the release in ./canary.yaml.', command: '<%= config.bin %> start --image v2'},
    {description: 'Start a full image reference for release my-app.', command: '<%= config.bin %> start my-app --image ghcr.io/acme/my-app:v2 -f deploy/canary.yaml'},
  ]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
    image: Flags.string({summary: 'Canary image: a tag for the spec image (v2), a digest or a full reference.', required: true}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Start)
    const printer = new ProgressPrinter(process.stderr, !this.jsonEnabled())
    const session = await openSession(flags.file, args.name, printer.onTick, sessionOverrides(flags))
    printer.setPlan(session.plan.totalWeight, session.plan.steps.length)
    const status = await startRollout(session, {canaryImage: canaryImageFor(session.release, flags.image), signal: new AbortController().signal})
    printer.end()
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 0))
    return status
  }
}
