/**
 * One error hierarchy for the whole tool. Every error a user can meet has a stable code (shown in
 * `--json` output and greppable in logs) and the exit code the README documents; pipelines depend
 * on both, so neither may change without a CHANGELOG entry.
 *
 * Library code throws these; only the CLI's top-level catch turns them into an exit code.
 */

/** The exit-code contract (README "Exit codes"). */
export const ExitCode = {
  Ok: 0,
  Internal: 1,
  Usage: 2,
  Config: 3,
  NotFound: 4,
  Conflict: 5,
  Unreachable: 6,
  AnalysisFailed: 10,
  Aborted: 11,
  Paused: 12,
  Inconclusive: 13,
  Timeout: 14,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** Where in a file a problem is; `line` and `column` are 1-based. */
export interface SourceLocation {
  readonly file: string
  readonly line?: number
  readonly column?: number
}

/** One problem found in a spec or config file; a ConfigError can carry many. */
export interface ConfigProblem {
  readonly location?: SourceLocation
  /** Dotted field path, e.g. `spec.steps.2.setWeight`. */
  readonly path: string
  readonly message: string
  readonly suggestion?: string
}

export interface CanaryErrorOptions extends ErrorOptions {
  readonly suggestions?: readonly string[]
  /** The object the error concerns, e.g. `Ingress shop/my-app-canary` or `./canary.yaml`. */
  readonly subject?: string
}

export abstract class CanaryError extends Error {
  abstract readonly code: `E_${string}`
  abstract readonly exitCode: ExitCode
  readonly suggestions: readonly string[]
  readonly subject: string | undefined

  constructor(message: string, options: CanaryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.suggestions = options.suggestions ?? []
    this.subject = options.subject
  }

  /** The stable shape printed by `--json`. */
  toJSON(): CanaryErrorJson {
    return {
      code: this.code,
      message: this.message,
      exitCode: this.exitCode,
      ...(this.subject === undefined ? {} : {subject: this.subject}),
      ...(this.suggestions.length === 0 ? {} : {suggestions: [...this.suggestions]}),
    }
  }
}

export interface CanaryErrorJson {
  code: string
  message: string
  exitCode: number
  subject?: string
  suggestions?: string[]
  problems?: ConfigProblem[]
  [extra: string]: unknown
}

/** A bug in canary itself (exit 1). Also used for rendered objects that fail the official schemas. */
export class InternalError extends CanaryError {
  readonly code = 'E_INTERNAL'
  readonly exitCode = ExitCode.Internal
}

/** Bad flags or arguments (exit 2). */
export class UsageError extends CanaryError {
  readonly code = 'E_USAGE'
  readonly exitCode = ExitCode.Usage
}

/** An invalid release spec or proxy config (exit 3). Carries every problem found, not just the first. */
export class ConfigError extends CanaryError {
  readonly code: `E_${string}` = 'E_CONFIG'
  readonly exitCode = ExitCode.Config
  readonly problems: readonly ConfigProblem[]

  constructor(message: string, problems: readonly ConfigProblem[] = [], options: CanaryErrorOptions = {}) {
    super(message, options)
    this.problems = problems
  }

  override toJSON(): CanaryErrorJson {
    return {...super.toJSON(), ...(this.problems.length === 0 ? {} : {problems: this.problems.map((p) => ({...p}))})}
  }
}

/** A release, rollout or object that does not exist (exit 4). */
export class NotFoundError extends CanaryError {
  readonly code = 'E_NOT_FOUND'
  readonly exitCode = ExitCode.NotFound
}

/** Another operation holds the release, an object is not ours, or a write lost a race (exit 5). */
export class ConflictError extends CanaryError {
  readonly code: `E_${string}` = 'E_CONFLICT'
  readonly exitCode = ExitCode.Conflict
}

/** The target (proxy daemon, API server, upstream) cannot be reached (exit 6). */
export class UnreachableError extends CanaryError {
  readonly code = 'E_UNREACHABLE'
  readonly exitCode = ExitCode.Unreachable
}

/** Analysis failed and the rollout was rolled back, or a gate refused to advance (exit 10). */
export class AnalysisFailedError extends CanaryError {
  readonly code = 'E_ANALYSIS_FAILED'
  readonly exitCode = ExitCode.AnalysisFailed
}

/** The rollout was aborted (exit 11). */
export class AbortedError extends CanaryError {
  readonly code = 'E_ABORTED'
  readonly exitCode = ExitCode.Aborted
}

/** The rollout stopped at an indefinite pause and waits for `canary step` / `canary promote` (exit 12). */
export class PausedError extends CanaryError {
  readonly code = 'E_PAUSED'
  readonly exitCode = ExitCode.Paused
}

/** Not enough data to judge the canary by the deadline (exit 13). */
export class InconclusiveError extends CanaryError {
  readonly code = 'E_INCONCLUSIVE'
  readonly exitCode = ExitCode.Inconclusive
}

/** Something did not happen in time: readiness, a rollout, a wait (exit 14). */
export class TimeoutError extends CanaryError {
  readonly code = 'E_TIMEOUT'
  readonly exitCode = ExitCode.Timeout
}

export function isCanaryError(error: unknown): error is CanaryError {
  return error instanceof CanaryError
}

/** The message of any thrown value, for `{cause}` chains and logs. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
