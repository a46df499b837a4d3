import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {ProgressPrinter, formatStatus, styleFor} from '../cli/progress.js'
import {releaseArgs, releaseFlags} from '../cli/release-flags.js'
import {canaryImageFor} from '../cli/session.js'
import {startRollout, type RolloutStatus} from '../rollout/services.js'

export default class Start extends BaseCommand<RolloutStatus> {
  static override summary = 'Start a canary: run the new version, wait until it is ready, move to the first step\'s weight.'

  static override description = 'Starts the proxy daemon and the stable version on demand (local target), then the canary. Refuses (exit 5) while another rollout of the release is in progress. A canary that never becomes ready is stopped again (exit 14).'

  static override examples = [
    {description: 'Start v2 of the release in ./canary.yaml.', command: '<%= config.bin %> start --image v2'},
    {description: 'Start a full image reference for release my-app.', command: '<%= config.bin %> start my-app --image ghcr.io/acme/my-app:v2 -f deploy/canary.yaml'},
  ]

  static override args = releaseArgs

  static override flags = {
    ...releaseFlags,
    image: Flags.string({summary: 'Canary image: a tag for the spec image (v2), a digest or a full reference.', required: true}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Start)
    const printer = new ProgressPrinter(process.stderr, !this.jsonEnabled())
    const session = await this.openRelease(flags, args.name, printer.onTick)
    printer.setPlan(session.plan.totalWeight, session.plan.steps.length)
    const status = await startRollout(session, {canaryImage: canaryImageFor(session.release, flags.image), signal: this.signal}).finally(() => printer.end())
    if (!this.jsonEnabled()) this.log(formatStatus(status, styleFor(process.stdout), 0))
    return status
  }
}
