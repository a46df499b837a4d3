import {describe, expect, it} from 'vitest'

import {formatError, toCanaryError} from '../../src/cli/base-command.js'
import {AddressError, ConfigError, ConflictError, ExitCode, InternalError, IoError, UsageError, canaryErrorFromJson, fileSystemError, listenError} from '../../src/errors.js'

describe('error hierarchy', () => {
  it('gives every error class its documented exit code and a stable E_ code', () => {
    const conflict = new ConflictError('release my-app is locked by pid 42', {subject: 'release shop/my-app', suggestions: ['wait for it to finish']})
    expect(conflict.exitCode).toBe(5)
    expect(conflict.toJSON()).toEqual({code: 'E_CONFLICT', message: 'release my-app is locked by pid 42', exitCode: 5, subject: 'release shop/my-app', suggestions: ['wait for it to finish']})
  })

  it('carries every config problem with its location into --json output', () => {
    const error = new ConfigError('canary.yaml is not a valid Release', [
      {location: {file: 'canary.yaml', line: 3, column: 5}, path: 'spec.replicas', message: 'expected an integer', suggestion: 'write replicas: 4'},
    ])
    expect(error.toJSON().problems).toEqual([{location: {file: 'canary.yaml', line: 3, column: 5}, path: 'spec.replicas', message: 'expected an integer', suggestion: 'write replicas: 4'}])
    expect(formatError(error)).toContain('canary.yaml:3:5 spec.replicas: expected an integer (write replicas: 4)')
  })

  it('treats anything unexpected as an internal error (exit 1) that asks for a bug report', () => {
    const error = toCanaryError(new TypeError('x is undefined'))
    expect(error).toBeInstanceOf(InternalError)
    expect(error.exitCode).toBe(ExitCode.Internal)
    expect(error.suggestions.join(' ')).toMatch(/bug/)
  })

  it('passes canary errors through unchanged', () => {
    const usage = new UsageError('--weight must be between 0 and 100')
    expect(toCanaryError(usage)).toBe(usage)
  })
})

/** A Node system error as fs, net and child_process throw them. */
function systemErrorOf(code: string, fields: Record<string, unknown> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something failed`), {code, errno: -1, ...fields})
}

describe('OS errors at the top level, by errno class', () => {
  it.each([
    ['ENOSPC', 'no space left on the device', /Free disk space/],
    ['EDQUOT', 'disk quota exceeded', /quota/],
    ['EROFS', 'the file system is read-only', /writable directory/],
    ['EACCES', 'permission denied', /owner and mode/],
    ['EPERM', 'operation not permitted', /owner, mode/],
    ['EMFILE', 'too many open files in this process', /ulimit -n/],
    ['ENFILE', 'too many open files on this system', /file-max/],
    ['EIO', 'input/output error', /dmesg/],
    ['EISDIR', 'it is a directory', /move the directory aside/],
    ['EFBIG', 'file too large', /file-size limit/],
  ])('%s on a file → E_IO (exit 7) naming the path, the operation and the reason, with a hint', (code, reason, hint) => {
    const error = toCanaryError(systemErrorOf(code, {syscall: 'open', path: '/srv/app/.canary/shop/state.json'}))
    expect(error.code).toBe('E_IO')
    expect(error.exitCode).toBe(ExitCode.Io)
    expect(error.message).toBe(`/srv/app/.canary/shop/state.json: open failed: ${reason}${code === 'EFBIG' ? ' (a file-size limit, see `ulimit -f`)' : ''} (${code})`)
    expect(error.suggestions.join(' ')).toMatch(hint)
    expect(error.toJSON()).toMatchObject({path: '/srv/app/.canary/shop/state.json', errno: code})
  })

  it.each([
    ['EADDRINUSE', 'E_ADDRESS_IN_USE', /already in use/, /ss -ltnp/],
    ['EADDRNOTAVAIL', 'E_ADDRESS_NOT_AVAILABLE', /not available on this host/, /ip addr/],
  ])('%s on listen → %s (exit 8) naming the address', (code, expected, reason, hint) => {
    const error = toCanaryError(systemErrorOf(code, {syscall: 'listen', address: '127.0.0.1', port: 8080}))
    expect(error).toBeInstanceOf(AddressError)
    expect(error.code).toBe(expected)
    expect(error.exitCode).toBe(ExitCode.Address)
    expect(error.message).toMatch(/127\.0\.0\.1:8080: listen failed/)
    expect(error.message).toMatch(reason)
    expect(error.suggestions.join(' ')).toMatch(hint)
    expect(error.toJSON()).toMatchObject({address: '127.0.0.1:8080'})
  })

  it('EACCES on listen is a privileged port (E_ADDRESS_FORBIDDEN), not a file permission', () => {
    const error = listenError(systemErrorOf('EACCES', {syscall: 'listen'}), '0.0.0.0:80', 'proxy listener') as AddressError
    expect(error.code).toBe('E_ADDRESS_FORBIDDEN')
    expect(error.message).toBe('proxy listener 0.0.0.0:80: listen failed: permission denied (ports below 1024 need privileges) (EACCES)')
  })

  it('connection failures → E_UNREACHABLE (exit 6)', () => {
    expect(toCanaryError(systemErrorOf('ECONNREFUSED', {syscall: 'connect', address: '127.0.0.1', port: 9901})).exitCode).toBe(ExitCode.Unreachable)
  })

  it('leaves errors without an errno, and Node internal codes (ERR_*), to the bug report', () => {
    expect(toCanaryError(Object.assign(new Error('bad'), {code: 'ERR_INVALID_ARG_TYPE'}))).toBeInstanceOf(InternalError)
    expect(toCanaryError(Object.assign(new Error('strange'), {code: 'EWHATEVER'}))).toBeInstanceOf(InternalError)
  })

  it('names the file even when the OS error does not (writes through a file handle)', () => {
    const error = fileSystemError(systemErrorOf('ENOSPC', {syscall: 'write'}), '/srv/app/.canary/shop/state.json', 'write') as IoError
    expect(error.message).toBe('/srv/app/.canary/shop/state.json: write failed: no space left on the device (ENOSPC)')
  })

  it('rebuilds an error sent as JSON (by the daemon) with its code and exit code', () => {
    const sent = new AddressError('E_ADDRESS_IN_USE', 'proxy listener 127.0.0.1:8080: listen failed: the address is already in use (EADDRINUSE)', '127.0.0.1:8080', {suggestions: ['Stop it.']})
    const rebuilt = canaryErrorFromJson(JSON.parse(JSON.stringify(sent.toJSON())) as Record<string, unknown>)
    expect(rebuilt).toBeInstanceOf(AddressError)
    expect(rebuilt?.toJSON()).toEqual(sent.toJSON())
    const io = new IoError('x: write failed: no space left on the device (ENOSPC)', {path: 'x', errno: 'ENOSPC'})
    expect(canaryErrorFromJson(io.toJSON())?.toJSON()).toEqual(io.toJSON())
    expect(canaryErrorFromJson({code: 'E_SOMETHING_ELSE', message: 'x'})).toBeUndefined()
  })
})
