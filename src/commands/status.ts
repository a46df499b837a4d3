import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {kubeFlags, sessionOverrides} from '../cli/release-flags.js'
import {UsageError, type ExitCode} from '../errors.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {rolloutStatus, waitForEnd, type RolloutStatus} from '../rollout/services.js'
import {openSession} from '../cli/session.js'
import {parseDurationMs} from '../release/duration.js'

export default class Status extends BaseCommand<RolloutStatus> {
  static override summary = 'Show a rollout: phase, step, weights read back from the proxy, traffic per version, analysis and decisions.'

  static override description = '--wait blocks until the rollout ends and exits with its code (0 promoted, 10 rolled back, 11 aborted, 13 inconclusive, 14 failed to start). An interrupted promotion or rollback is completed. The --json object is documented in docs/rollout.md.'

  static override examples = [
    {description: 'Show the rollout of the release in ./canary.yaml.', command: '<%= config.bin %> status'},
    {description: 'Block until the rollout ends (CI).', command: '<%= config.bin %> status my-app --wait --timeout 30m'},
    {description: 'Machine-readable status.', command: '<%= config.bin %> status --json'},
  ]

  static override args = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    ...kubeFlags,
    watch: Flags.boolean({summary: 'Refresh every second until the rollout ends.', exclusive: ['wait']}),
    wait: Flags.boolean({summary: 'Block until the rollout ends; exit with its code.'}),
    timeout: Flags.string({summary: 'With --wait or --watch: give up after this long (exit 14).'}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Status)
    const timeoutMs = flags.timeout === undefined ? undefined : parseDurationMs(flags.timeout)
    if (flags.timeout !== undefined && timeoutMs === undefined) throw new UsageError(`--timeout ${flags.timeout}: not a duration`, {suggestions: ['Use e.g. 30s, 2m or 1h30m.']})
    const session = await openSession(flags.file, args.name, undefined, sessionOverrides(flags))
    const signal = new AbortController().signal
    const style = styleFor(process.stdout)
    if (!flags.wait && !flags.watch) {
      const status = await rolloutStatus(session, {signal})
      if (!this.jsonEnabled()) this.log(formatStatus(status, style))
      return status
    }
    const tty = process.stdout.isTTY === true && !this.jsonEnabled()
    let lastPhase = ''
    const status = await waitForEnd(session, {
      ...(timeoutMs === undefined ? {} : {timeoutMs}),
      signal,
      onStatus: (s) => {
        if (this.jsonEnabled()) return
        if (flags.watch && tty) process.stdout.write(`\u001B[H\u001B[2J${formatStatus(s, style)}\n`)
        else if (s.phase !== lastPhase) this.log(`${new Date().toISOString().slice(11, 19)} ${s.name}: ${s.phase}, step ${s.step.index}/${s.step.count}, canary ${s.canaryWeight ?? '?'}/${s.totalWeight}`)
        lastPhase = s.phase
      },
    })
    if (!this.jsonEnabled() && !(flags.watch && tty)) this.log(formatStatus(status, style, 5))
    if (flags.wait && status.exitCode !== null && status.exitCode !== 0) this.setOutcome(status.exitCode as ExitCode)
    return status
  }
}
