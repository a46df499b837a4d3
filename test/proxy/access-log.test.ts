import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {AccessLog, jsonString, millis3, type AccessLogEntry} from '../../src/proxy/access-log.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})

function entry(overrides: Partial<AccessLogEntry>): AccessLogEntry {
  return {timeMs: 0, client: '127.0.0.1', method: 'GET', host: 'h', path: '/', status: 200, durationMs: 1, route: 'r', service: 's', version: 'v1', upstream: 'http://127.0.0.1:1', bytes: 0, retries: 0, ...overrides}
}

function written(entries: AccessLogEntry[]): Record<string, unknown>[] {
  const dir = mkdtempSync(join(tmpdir(), 'canary-access-log-'))
  dirs.push(dir)
  const file = join(dir, 'access.log')
  const log = new AccessLog(file)
  for (const e of entries) log.log(e)
  log.close()
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
}

describe('AccessLog', () => {
  it('writes ISO times with milliseconds, across seconds and for every millisecond width', () => {
    const times = [1795256966000, 1795256966005, 1795256966042, 1795256966512, 1795256967001, 1795256966999]
    const lines = written(times.map((timeMs) => entry({timeMs})))
    expect(lines.map((l) => l.time)).toEqual(times.map((t) => new Date(t).toISOString()))
  })

  it('escapes client-controlled and config strings into valid JSON', () => {
    const nasty = 'a"b\\c\u0001\n\u2028é'
    const [line] = written([entry({host: nasty, path: `/p?q=${nasty}`, route: nasty, version: `v"1`})])
    expect(line).toMatchObject({host: nasty, path: `/p?q=${nasty}`, route: nasty, version: 'v"1'})
  })

  it('quotes strings exactly as JSON.stringify does', () => {
    const samples = ['', '/', '/a?b=1&c=%20', '127.0.0.1', '::ffff:10.0.0.1', 'a"b', 'a\\b', '\u0000', '\u001f', '\u007f', 'tab\there', 'é€', '\u2028', '\ud83d\ude00', 'lone \ud800 high', 'lone \udc00 low']
    for (const value of samples) expect(jsonString(value)).toBe(JSON.stringify(value))
  })

  it('writes durations with three decimals', () => {
    expect([0, 0.0004, 0.0006, 0.05, 0.812, 1.5, 12.3456, 1234.5678].map(millis3)).toEqual(['0.000', '0.000', '0.001', '0.050', '0.812', '1.500', '12.346', '1234.568'])
  })
})
