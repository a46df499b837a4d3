/**
 * Reads a release spec or proxy config from disk without letting the file decide how long that
 * takes or how much memory it costs: only regular files (a FIFO, device or directory could block
 * or never end), at most `maxBytes`, and only valid UTF-8 (a stray byte would otherwise turn into
 * U+FFFD silently). Every refusal is a ConfigError (exit 3) with a located problem.
 */
import {isUtf8} from 'node:buffer'
import {constants, type Stats} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'

import {ConfigError, type CanaryError, type SourceLocation} from '../errors.js'
import {CONFIG_LIMITS, formatBytes} from './limits.js'

export interface ReadConfigOptions {
  /** How messages name the file: `release spec`, `proxy config`. */
  readonly label: string
  /** The error for a file that does not exist (a spec: NotFoundError, exit 4). */
  readonly missing: (file: string, cause: unknown) => CanaryError
  readonly maxBytes?: number
  /** Shown with every refusal, e.g. "Check the --config path." */
  readonly suggestion?: string
}

/** The file's text: a regular file of valid UTF-8 (a leading byte order mark is dropped) within the size limit. */
export async function readConfigFile(file: string, options: ReadConfigOptions): Promise<string> {
  return decodeConfigText(await readConfigBytes(file, options), file, options)
}

/** The file's bytes, with the same checks as readConfigFile except the encoding. */
export async function readConfigBytes(file: string, options: ReadConfigOptions): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? CONFIG_LIMITS.maxBytes
  const refuse = (message: string, location: SourceLocation = {file}, cause?: unknown): never => {
    throw new ConfigError(`${options.label} ${file}: ${message}`, [{location, path: '', message, ...(options.suggestion === undefined ? {} : {suggestion: options.suggestion})}], {subject: file, cause, suggestions: options.suggestion === undefined ? [] : [options.suggestion]})
  }
  let handle: FileHandle
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat on the open descriptor then
    // tells what was opened (a stat before the open could be raced by a rename).
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw options.missing(file, error)
    if (code === 'ENXIO') return refuse('is not a regular file (a socket, or a device with nothing behind it): expected a YAML file', {file}, error)
    return refuse(`cannot be read: ${(error as Error).message}`, {file}, error)
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) refuse(`is ${kindOf(stats)}, not a regular file: expected a YAML file`)
    if (stats.size > maxBytes) refuse(`is ${formatBytes(stats.size)}, over the ${formatBytes(maxBytes)} limit for a ${options.label}`, await limitLocation(handle, file, maxBytes))
    // The size can change after fstat (a growing file, /proc files that report 0): read at most one byte past the limit.
    const buffer = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(stats.size + 1, 64 * 1024)))
    let length = 0
    let chunk: Buffer = buffer
    for (;;) {
      if (length === chunk.length) {
        if (chunk.length > maxBytes) break
        const grown = Buffer.allocUnsafe(Math.min(maxBytes + 1, chunk.length * 2))
        chunk.copy(grown, 0, 0, length)
        chunk = grown
      }
      const {bytesRead} = await handle.read(chunk, length, chunk.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > maxBytes) refuse(`is over the ${formatBytes(maxBytes)} limit for a ${options.label}`, locationOfByte(chunk.subarray(0, length), file, maxBytes))
    return chunk.subarray(0, length)
  } finally {
    await handle.close()
  }
}

/** UTF-8 text of `bytes`; a ConfigError naming the position of the first byte that is not UTF-8. */
export function decodeConfigText(bytes: Buffer, file: string, options: Pick<ReadConfigOptions, 'label'>): string {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0
  if (isUtf8(bytes)) return bytes.toString('utf8', bom)
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)
  const offset = utf16 ? 0 : firstInvalidByte(bytes)
  const message = utf16
    ? 'is UTF-16 (it starts with a UTF-16 byte order mark): expected UTF-8'
    : `is not valid UTF-8: byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')} at byte offset ${offset} does not start or continue a UTF-8 character`
  const suggestion = 'Save the file as UTF-8 (YAML files are UTF-8 text).'
  throw new ConfigError(`${options.label} ${file}: ${message}`, [{location: locationOfByte(bytes, file, offset), path: '', message, suggestion}], {subject: file, suggestions: [suggestion]})
}

/** Where the first invalid sequence starts: decoding replaces it with U+FFFD, so re-encoding differs from there on. */
function firstInvalidByte(bytes: Buffer): number {
  const reencoded = Buffer.from(bytes.toString('utf8'), 'utf8')
  const length = Math.min(bytes.length, reencoded.length)
  for (let i = 0; i < length; i++) if (bytes[i] !== reencoded[i]) return i
  return length
}

/** Line and (character) column of byte `offset`. */
function locationOfByte(bytes: Buffer, file: string, offset: number): SourceLocation {
  let line = 1
  let lineStart = 0
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < offset; i = bytes.indexOf(0x0a, i + 1)) {
    line++
    lineStart = i + 1
  }
  return {file, line, column: bytes.toString('utf8', lineStart, offset).length + 1}
}

async function limitLocation(handle: FileHandle, file: string, maxBytes: number): Promise<SourceLocation> {
  const head = Buffer.allocUnsafe(maxBytes)
  const {bytesRead} = await handle.read(head, 0, maxBytes, 0)
  return locationOfByte(head.subarray(0, bytesRead), file, bytesRead)
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)'
  if (stats.isDirectory()) return 'a directory'
  if (stats.isCharacterDevice()) return 'a character device'
  if (stats.isBlockDevice()) return 'a block device'
  if (stats.isSocket()) return 'a socket'
  return 'not a regular file'
}
