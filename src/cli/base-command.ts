import {Command, Errors, Flags} from '@oclif/core'

import {CanaryError, InternalError, UsageError, systemError, type CanaryErrorJson, type ExitCode} from '../errors.js'

/**
 * Base of every command: `--json` prints the returned object (or `{ "error": … }` on failure),
 * every failure maps to one documented exit code, and no stack trace is shown without `--verbose`.
 * Commands stay thin: parse, call a service, print a human summary, return a typed result.
 */
export abstract class BaseCommand<T> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    verbose: Flags.boolean({description: 'Show stack traces and debug detail on errors.', helpGroup: 'GLOBAL'}),
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
    const error = toCanaryError(raw)
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
