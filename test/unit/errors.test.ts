import {describe, expect, it} from 'vitest'

import {formatError, toCanaryError} from '../../src/cli/base-command.js'
import {ConfigError, ConflictError, ExitCode, InternalError, UsageError} from '../../src/errors.js'

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
