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
  Io: 7,
  Address: 8,
  AnalysisFailed: 10,
  Aborted: 11,
  Paused: 12,
  Inconclusive: 13,
  Timeout: 14,
  /** 128 + the signal's number, as shells report a command that SIGINT or SIGTERM stopped. */
  Interrupted: 130,
  Terminated: 143,
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

/**
 * The command was stopped by SIGINT (Ctrl-C, exit 130) or SIGTERM (exit 143) and stopped cleanly:
 * what it had decided is saved and carried out, the lock is released, and the saved rollout can
 * be resumed (`canary run` with the same image) or ended (`canary abort`).
 */
export class InterruptedError extends CanaryError {
  readonly code = 'E_INTERRUPTED'
  readonly exitCode: ExitCode
  readonly signal: 'SIGINT' | 'SIGTERM'

  constructor(signal: 'SIGINT' | 'SIGTERM', options: CanaryErrorOptions = {}) {
    super(`interrupted by ${signal}`, options)
    this.signal = signal
    this.exitCode = signal === 'SIGINT' ? ExitCode.Interrupted : ExitCode.Terminated
  }
}

/**
 * A local file-system or operating-system failure that is not a bug: disk full, read-only file
 * system, permission denied, too many open files (exit 7). Names the file, the operation and the
 * OS reason (`errno`), so the fix is obvious without --verbose.
 */
export class IoError extends CanaryError {
  readonly code = 'E_IO'
  readonly exitCode = ExitCode.Io
  /** The file or directory concerned. */
  readonly path: string | undefined
  /** The OS error code, e.g. `ENOSPC`. */
  readonly errno: string | undefined

  constructor(message: string, options: CanaryErrorOptions & {readonly path?: string; readonly errno?: string} = {}) {
    super(message, options)
    this.path = options.path
    this.errno = options.errno
  }

  override toJSON(): CanaryErrorJson {
    return {...super.toJSON(), ...(this.path === undefined ? {} : {path: this.path}), ...(this.errno === undefined ? {} : {errno: this.errno})}
  }
}

/** Why a listen address cannot be bound; each is a stable code of AddressError. */
export type AddressErrorCode = 'E_ADDRESS_IN_USE' | 'E_ADDRESS_NOT_AVAILABLE' | 'E_ADDRESS_FORBIDDEN'

/**
 * A listen address cannot be bound (exit 8): another program has the port (`E_ADDRESS_IN_USE`),
 * the address is not one of this host's (`E_ADDRESS_NOT_AVAILABLE`), or the port is privileged
 * (`E_ADDRESS_FORBIDDEN`). Names the address and what to do.
 */
export class AddressError extends CanaryError {
  readonly code: AddressErrorCode
  readonly exitCode = ExitCode.Address
  /** `host:port` as configured. */
  readonly address: string

  constructor(code: AddressErrorCode, message: string, address: string, options: CanaryErrorOptions = {}) {
    super(message, options)
    this.code = code
    this.address = address
  }

  override toJSON(): CanaryErrorJson {
    return {...super.toJSON(), address: this.address}
  }
}

/** What an OS error code means, in words, and what a user can do about it. */
const FILE_SYSTEM_ERRORS: Readonly<Record<string, {readonly reason: string; readonly hint: string}>> = {
  ENOSPC: {reason: 'no space left on the device', hint: 'Free disk space on that file system and run the command again.'},
  EDQUOT: {reason: 'disk quota exceeded', hint: 'Free space within your quota and run the command again.'},
  EFBIG: {reason: 'file too large (a file-size limit, see `ulimit -f`)', hint: 'Raise the file-size limit and run the command again.'},
  EROFS: {reason: 'the file system is read-only', hint: 'canary keeps its state in .canary/ beside the spec file: run it with the spec in a writable directory.'},
  EACCES: {reason: 'permission denied', hint: 'Check the owner and mode of the file and of its directory (ls -ld); run canary as the user that owns .canary/.'},
  EPERM: {reason: 'operation not permitted', hint: 'Check the owner, mode and attributes of the file and of its directory (ls -ld, lsattr).'},
  EMFILE: {reason: 'too many open files in this process', hint: 'Raise the open-file limit (`ulimit -n`) and run the command again.'},
  ENFILE: {reason: 'too many open files on this system', hint: 'Close other programs or raise the system limit (fs.file-max).'},
  EIO: {reason: 'input/output error', hint: 'The disk or file system is failing; check the system log (dmesg).'},
  EISDIR: {reason: 'it is a directory', hint: 'A file is expected at this path: move the directory aside.'},
  ENOTDIR: {reason: 'a component of the path is not a directory', hint: 'A directory is expected in this path: move the file that is in its way aside.'},
  ELOOP: {reason: 'too many levels of symbolic links', hint: 'Fix or remove the symbolic link.'},
  ENAMETOOLONG: {reason: 'the path is too long', hint: 'Move the spec file to a directory with a shorter path.'},
  ENOENT: {reason: 'no such file or directory', hint: 'Check that the directory still exists (was it removed while canary ran?).'},
  ENOTEMPTY: {reason: 'the directory is not empty', hint: 'Move the directory aside and run the command again.'},
  EEXIST: {reason: 'the file already exists', hint: 'Move the file aside and run the command again.'},
  EBUSY: {reason: 'the file is busy', hint: 'Another program uses it; try again when it is done.'},
  ETXTBSY: {reason: 'the file is busy', hint: 'Another program uses it; try again when it is done.'},
  EXDEV: {reason: 'the paths are on different file systems', hint: 'Keep the spec file and its .canary/ directory on one file system.'},
  ENOMEM: {reason: 'out of memory', hint: 'Free memory and run the command again.'},
  EAGAIN: {reason: 'resource temporarily unavailable', hint: 'Run the command again.'},
  ESTALE: {reason: 'stale file handle (network file system)', hint: 'Remount the file system and run the command again.'},
}

/** Listen failures by OS error code. */
const ADDRESS_ERRORS: Readonly<Record<string, {readonly code: AddressErrorCode; readonly reason: string; readonly hint: string}>> = {
  EADDRINUSE: {code: 'E_ADDRESS_IN_USE', reason: 'the address is already in use', hint: 'Stop the program that listens there (`ss -ltnp` shows it), or choose another port (port 0 picks a free one).'},
  EADDRNOTAVAIL: {code: 'E_ADDRESS_NOT_AVAILABLE', reason: 'the address is not available on this host', hint: 'Listen on an address of this host (127.0.0.1, 0.0.0.0 or one `ip addr` shows).'},
  EACCES: {code: 'E_ADDRESS_FORBIDDEN', reason: 'permission denied (ports below 1024 need privileges)', hint: 'Choose a port above 1023, or grant the privilege (CAP_NET_BIND_SERVICE).'},
  EPERM: {code: 'E_ADDRESS_FORBIDDEN', reason: 'operation not permitted', hint: 'Choose a port above 1023, or grant the privilege (CAP_NET_BIND_SERVICE).'},
}

/** Connection failures by OS error code: the other side is not there. */
const NETWORK_ERRORS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN'])

/** The OS error code (`ENOSPC`, …) of a Node system error, or undefined for anything else. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as {code?: unknown} | null | undefined)?.code
  return typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code) && !code.startsWith('E_') && !code.startsWith('ERR_') ? code : undefined
}

/**
 * A file-system failure as an IoError naming `path` and the operation, e.g.
 * `.canary/shop/state.json: write failed: no space left on the device (ENOSPC)`. Anything that is
 * not an OS error (or is already a CanaryError) is returned unchanged.
 */
export function fileSystemError(error: unknown, path: string, operation: string): unknown {
  if (error instanceof CanaryError) return error
  const errno = errnoOf(error)
  if (errno === undefined) return error
  const known = FILE_SYSTEM_ERRORS[errno]
  return new IoError(`${path}: ${operation} failed: ${known?.reason ?? messageOf(error)} (${errno})`, {
    cause: error,
    path,
    errno,
    subject: path,
    suggestions: known === undefined ? [] : [known.hint],
  })
}

/** A failed listen as an AddressError naming the address; other OS errors become an IoError. */
export function listenError(error: unknown, address: string, what: string): unknown {
  if (error instanceof CanaryError) return error
  const errno = errnoOf(error)
  if (errno === undefined) return error
  const known = ADDRESS_ERRORS[errno]
  if (known === undefined) return fileSystemError(error, address, `${what}: listen`)
  return new AddressError(known.code, `${what} ${address}: listen failed: ${known.reason} (${errno})`, address, {cause: error, subject: address, suggestions: [known.hint]})
}

/**
 * Any OS error that reached the top level, by class of errno: listen failures → AddressError,
 * connection failures → UnreachableError, file-system and resource failures → IoError. Undefined
 * for everything else (which is then a bug).
 */
export function systemError(error: unknown): CanaryError | undefined {
  if (error instanceof CanaryError) return error
  const errno = errnoOf(error)
  if (errno === undefined) return undefined
  const details = error as {syscall?: string; path?: string; dest?: string; address?: string; port?: number}
  if (details.syscall === 'listen' || details.syscall === 'bind' || errno === 'EADDRINUSE' || errno === 'EADDRNOTAVAIL') {
    const address = details.address === undefined ? 'address' : `${details.address}${details.port === undefined ? '' : `:${details.port}`}`
    return listenError(error, address, 'listener') as CanaryError
  }
  if (NETWORK_ERRORS.has(errno)) {
    return new UnreachableError(`${details.address ?? 'connection'}${details.port === undefined ? '' : `:${details.port}`}: ${details.syscall ?? 'connect'} failed: ${messageOf(error)}`, {cause: error})
  }
  if (FILE_SYSTEM_ERRORS[errno] !== undefined) {
    const path = details.path ?? '(unnamed file)'
    const mapped = fileSystemError(error, details.dest === undefined ? path : `${path} → ${details.dest}`, details.syscall ?? 'file operation')
    return mapped as CanaryError
  }
  return undefined
}

/** A CanaryError rebuilt from its `--json` shape (e.g. sent by the release daemon), keeping code and exit code. */
export function canaryErrorFromJson(json: {readonly code?: unknown; readonly message?: unknown; readonly suggestions?: unknown; readonly path?: unknown; readonly errno?: unknown; readonly address?: unknown}, subject?: string): CanaryError | undefined {
  if (typeof json.code !== 'string' || typeof json.message !== 'string') return undefined
  const suggestions = Array.isArray(json.suggestions) ? json.suggestions.filter((s): s is string => typeof s === 'string') : []
  const options = {suggestions, ...(subject === undefined ? {} : {subject})}
  switch (json.code) {
    case 'E_IO':
      return new IoError(json.message, {...options, ...(typeof json.path === 'string' ? {path: json.path} : {}), ...(typeof json.errno === 'string' ? {errno: json.errno} : {})})
    case 'E_ADDRESS_IN_USE':
    case 'E_ADDRESS_NOT_AVAILABLE':
    case 'E_ADDRESS_FORBIDDEN':
      return new AddressError(json.code, json.message, typeof json.address === 'string' ? json.address : '', options)
    case 'E_CONFIG':
      return new ConfigError(json.message, [], options)
    default:
      return undefined
  }
}

export function isCanaryError(error: unknown): error is CanaryError {
  return error instanceof CanaryError
}

/** The message of any thrown value, for `{cause}` chains and logs. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
