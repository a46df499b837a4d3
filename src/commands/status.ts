import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {formatStatus, styleFor} from '../cli/progress.js'
import {releaseArgs, releaseFlags, timeoutMsOf} from '../cli/release-flags.js'
import type {ExitCode} from '../errors.js'
import {rolloutStatus, waitForEnd, type RolloutStatus} from '../rollout/services.js'

export default class Status extends BaseCommand<RolloutStatus> {
  static override summary = 'Show a rollout: phase, step, weights read back from the proxy, traffic per version, analysis and decisions.'

  static override description = '--wait blocks until the rollout ends and exits with its code (0 promoted, 10 rolled back, 11 aborted, 13 inconclusive, 14 failed to start). An interrupted promotion or rollback is completed. The --json object is documented in docs/rollout.md.'

  static override examples = [
    {description: 'Show the rollout of the release in ./canary.yaml.', command: '<%= config.bin %> status'},
    {description: 'Block until the rollout ends (CI).', command: '<%= config.bin %> status my-app --wait --timeout 30m'},
    {description: 'Machine-readable status.', command: '<%= config.bin %> status --json'},
  ]

  static override args = releaseArgs

  static override flags = {
    ...releaseFlags,
    watch: Flags.boolean({summary: 'Refresh every second until the rollout ends.', exclusive: ['wait']}),
    wait: Flags.boolean({summary: 'Block until the rollout ends; exit with its code.'}),
    timeout: Flags.string({summary: 'With --wait or --watch: give up after this long (exit 14).'}),
  }

  async run(): Promise<RolloutStatus> {
    const {args, flags} = await this.parse(Status)
    const timeoutMs = timeoutMsOf(flags.timeout)
    const session = await this.openRelease(flags, args.name)
    const signal = this.signal
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
