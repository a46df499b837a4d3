import {Command, Errors, Flags} from '@oclif/core'

import {CanaryError, InternalError, InterruptedError, UsageError, systemError, type CanaryErrorJson, type ExitCode} from '../errors.js'
import type {TickResult} from '../rollout/engine.js'
import {sessionOverrides, type ReleaseFlagValues} from './release-flags.js'
import {openSession, type OpenedSession} from './session.js'

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/**
 * Base of every command: `--json` prints the returned object (or `{ "error": … }` on failure),
 * every failure maps to one documented exit code, and no stack trace is shown without `--verbose`.
 * Commands stay thin: parse, call a service, print a human summary, return a typed result.
 *
 * Cancellation: `this.signal` fires on the first SIGINT or SIGTERM, and every long operation takes
 * it; the command then stops cleanly and exits 130 (SIGINT) or 143 (SIGTERM). A second signal
 * quits at once, as if the process had no handler. Only commands that read `this.signal` install
 * the handlers, so `canary proxy` keeps its own (drain on SIGTERM).
 */
export abstract class BaseCommand<T> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    verbose: Flags.boolean({description: 'Show stack traces and debug detail on errors.', helpGroup: 'GLOBAL'}),
  }

  private interruption: AbortController | undefined

  /** Aborted with an InterruptedError by the first SIGINT or SIGTERM. */
  protected get signal(): AbortSignal {
    if (this.interruption === undefined) {
      this.interruption = new AbortController()
      for (const name of STOP_SIGNALS) process.on(name, this.onStopSignal)
    }
    return this.interruption.signal
  }

  private readonly onStopSignal = (name: (typeof STOP_SIGNALS)[number]): void => {
    const interruption = this.interruption
    if (interruption === undefined || interruption.signal.aborted) {
      // The second signal: stop waiting for a clean stop and die by the signal, as without a handler.
      this.removeStopHandlers()
      process.kill(process.pid, name)
      return
    }
    process.stderr.write(`canary: ${name} received: stopping cleanly (a decision in progress is carried out and saved); ${name === 'SIGINT' ? 'press Ctrl-C' : 'send SIGTERM'} again to quit at once\n`)
    interruption.abort(new InterruptedError(name, {suggestions: ['`canary status` shows where the rollout is.', 'A rollout in progress is left as saved: `canary run` with the same --image resumes it, `canary abort` ends it.']}))
  }

  private removeStopHandlers(): void {
    for (const name of STOP_SIGNALS) process.off(name, this.onStopSignal)
  }

  /** The session of the release that `releaseFlags` and NAME (`releaseArgs`) select. */
  protected openRelease(flags: ReleaseFlagValues, name: string | undefined, onTick?: (tick: TickResult) => void): Promise<OpenedSession> {
    return openSession(flags.file, name, onTick, sessionOverrides(flags))
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    this.removeStopHandlers()
    return super.finally(error)
  }

  /**
   * Ends the command with a non-zero outcome code while still printing the result
   * (e.g. `canary run` → 10 after a rollback, with the status object under `--json`).
   */
  protected setOutcome(exitCode: ExitCode): void {
    process.exitCode = exitCode
  }

  abstract override run(): Promise<T>

  protected override async catch(raw: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<never> {
    // After an interrupt, whatever the aborted operation threw (an AbortError, a wrapped one) means "interrupted".
    const interrupted = this.interruption?.signal.aborted === true && !(raw instanceof Errors.ExitError) ? (this.interruption.signal.reason as InterruptedError) : undefined
    const error = interrupted ?? toCanaryError(raw)
    if (this.jsonEnabled()) {
      this.logJson({error: error.toJSON()} satisfies {error: CanaryErrorJson})
    } else {
      this.logToStderr(formatError(error, this.argv.includes('--verbose') ? raw : undefined))
    }
    // ExitError is not printed again by oclif's handler; it only carries the code.
    return this.exit(error.exitCode) as never
  }
}

/**
 * Any thrown value → a CanaryError. An OS error is mapped by its class (errno), not case by case:
 * a full disk or a taken port is the environment's problem, not a bug. Only what we did not
 * anticipate at all is a bug (exit 1).
 */
export function toCanaryError(raw: unknown): CanaryError {
  if (raw instanceof CanaryError) return raw
  if (raw instanceof Errors.ExitError) throw raw
  const oclifExit = (raw as {oclif?: {exit?: number}} | undefined)?.oclif?.exit
  if (raw instanceof Errors.CLIError && oclifExit === 2) {
    return new UsageError(stripAnsi(raw.message), {suggestions: ['Run the command with --help to see its flags and arguments.']})
  }
  if (raw instanceof Error && (raw.constructor.name.endsWith('ParseError') || raw.name.endsWith('ParseError'))) {
    return new UsageError(stripAnsi(raw.message), {suggestions: ['Run the command with --help to see its flags and arguments.']})
  }
  const system = systemError(raw)
  if (system !== undefined) return system
  const message = raw instanceof Error ? raw.message : String(raw)
  return new InternalError(`internal error: ${message}`, {
    cause: raw,
    suggestions: ['This is a bug in canary. Re-run with --verbose and report it with the output.'],
  })
}

/** Human form: one message line, the object it concerns, each problem, then suggestions. */
export function formatError(error: CanaryError, verboseCause?: unknown): string {
  const lines = [`Error [${error.code}]: ${error.message}`]
  if (error.subject !== undefined) lines.push(`  object: ${error.subject}`)
  const problems = (error.toJSON().problems ?? []) as Array<{location?: {file: string; line?: number; column?: number}; path: string; message: string; suggestion?: string}>
  for (const p of problems) {
    const where = p.location === undefined ? '' : `${p.location.file}${p.location.line === undefined ? '' : `:${p.location.line}:${p.location.column ?? 1}`} `
    lines.push(`  ${where}${p.path === '' ? '' : `${p.path}: `}${p.message}${p.suggestion === undefined ? '' : ` (${p.suggestion})`}`)
  }
  for (const s of error.suggestions) lines.push(`  hint: ${s}`)
  if (verboseCause instanceof Error && verboseCause.stack !== undefined) lines.push('', verboseCause.stack)
  return lines.join('\n')
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001B\[[0-9;]*m/g, '')
}
