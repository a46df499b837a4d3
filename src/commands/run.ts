import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import {UsageError} from '../errors.js'
import {ProgressPrinter, formatStatus, styleFor} from '../cli/progress.js'
import {runRollout, type RunReport} from '../rollout/services.js'
import {canaryImageFor, openSession} from '../cli/session.js'
import {parseDurationMs} from '../release/duration.js'

export default class Run extends BaseCommand<RunReport> {
  static override summary = 'Run a whole canary release: start, follow the plan with analysis every interval, promote or roll back.'

  static override description = `Exits 0 promoted, 10 rolled back (analysis failed), 11 aborted, 12 stopped at an indefinite pause, 13 inconclusive, 14 timed out or canary never ready. Interrupting it (Ctrl-C, SIGTERM, kill -9) leaves consistent state; run it again (same --image) or \`canary status\` to resume. On --timeout the rollout is left where it is.`

  static override examples = [
    {description: 'Release v2 of the release in ./canary.yaml.', command: '<%= config.bin %> run --image v2'},
    {description: 'In CI, with a deadline and JSON output.', command: '<%= config.bin %> run my-app --image ghcr.io/acme/my-app:v2 --timeout 30m --json'},
  ]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
    image: Flags.string({summary: 'Canary image: a tag for the spec image (v2), a digest or a full reference.', required: true}),
    timeout: Flags.string({summary: 'Give up after this long (e.g. 30m): exit 14, or 13 when the canary could not be judged yet.'}),
  }

  async run(): Promise<RunReport> {
    const {args, flags} = await this.parse(Run)
    const timeoutMs = flags.timeout === undefined ? undefined : parseDurationMs(flags.timeout)
    if (flags.timeout !== undefined && timeoutMs === undefined) throw new UsageError(`--timeout ${flags.timeout}: not a duration`, {suggestions: ['Use e.g. 30s, 2m or 1h30m.']})
    const printer = new ProgressPrinter(process.stderr, !this.jsonEnabled())
    const session = await openSession(flags.file, args.name, printer.onTick, sessionOverrides(flags))
    printer.setPlan(session.plan.totalWeight, session.plan.steps.length)
    const report = await runRollout(session, {canaryImage: canaryImageFor(session.release, flags.image), ...(timeoutMs === undefined ? {} : {timeoutMs}), signal: new AbortController().signal})
    printer.end()
    if (!this.jsonEnabled()) this.log(formatStatus(report.status, styleFor(process.stdout), 0))
    if (report.exitCode !== 0) this.setOutcome(report.exitCode)
    return report
  }
}
