import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {ProgressPrinter, formatStatus, styleFor} from '../cli/progress.js'
import {releaseArgs, releaseFlags, timeoutMsOf} from '../cli/release-flags.js'
import {canaryImageFor} from '../cli/session.js'
import {runRollout, type RunReport} from '../rollout/services.js'

export default class Run extends BaseCommand<RunReport> {
  static override summary = 'Run a whole canary release: start, follow the plan with analysis every interval, promote or roll back.'

  static override description = `Exits 0 promoted, 10 rolled back (analysis failed), 11 aborted, 12 stopped at an indefinite pause, 13 inconclusive, 14 timed out or canary never ready. Interrupting it (Ctrl-C, SIGTERM, kill -9) leaves consistent state; run it again (same --image) or \`canary status\` to resume. On --timeout the rollout is left where it is.`

  static override examples = [
    {description: 'Release v2 of the release in ./canary.yaml.', command: '<%= config.bin %> run --image v2'},
    {description: 'In CI, with a deadline and JSON output.', command: '<%= config.bin %> run my-app --image ghcr.io/acme/my-app:v2 --timeout 30m --json'},
  ]

  static override args = releaseArgs

  static override flags = {
    ...releaseFlags,
    image: Flags.string({summary: 'Canary image: a tag for the spec image (v2), a digest or a full reference.', required: true}),
    timeout: Flags.string({summary: 'Give up after this long (e.g. 30m): exit 14, or 13 when the canary could not be judged yet.'}),
  }

  async run(): Promise<RunReport> {
    const {args, flags} = await this.parse(Run)
    const timeoutMs = timeoutMsOf(flags.timeout)
    const printer = new ProgressPrinter(process.stderr, !this.jsonEnabled())
    const session = await this.openRelease(flags, args.name, printer.onTick)
    printer.setPlan(session.plan.totalWeight, session.plan.steps.length)
    const report = await runRollout(session, {canaryImage: canaryImageFor(session.release, flags.image), ...(timeoutMs === undefined ? {} : {timeoutMs}), signal: this.signal}).finally(() => printer.end())
    if (!this.jsonEnabled()) this.log(formatStatus(report.status, styleFor(process.stdout), 0))
    if (report.exitCode !== 0) this.setOutcome(report.exitCode)
    return report
  }
}
