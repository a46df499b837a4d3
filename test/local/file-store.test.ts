// The rollout state file: round trip, optimistic concurrency, staged saves, and every kind of
// corrupt file refused by name and field (exit 3), never used or overwritten.
import {execFileSync} from 'node:child_process'
import {mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {ConfigError, ConflictError, ExitCode, InternalError} from '../../src/errors.js'
import {FileRolloutStore, STATE_FORMAT} from '../../src/local/file-store.js'
import {newRollout} from '../../src/rollout/core/decide.js'
import type {RolloutState} from '../../src/rollout/core/types.js'
import {rolloutStateSchema} from '../../src/rollout/state-schema.js'

const signal = new AbortController().signal
let dir: string
let file: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canary-store-'))
  file = join(dir, 'state.json')
})

afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const aState = (overrides: Partial<RolloutState> = {}): RolloutState => ({...newRollout({name: 'shop', stableImage: 'acme/shop:v1', canaryImage: 'acme/shop:v2', nowMs: 1_700_000_000_000}), ...overrides})
const store = () => new FileRolloutStore<RolloutState>(file, 'release shop', rolloutStateSchema)
const stored = (state: unknown, extra: Record<string, unknown> = {}) => `${JSON.stringify({format: STATE_FORMAT, revision: 3, state, ...extra}, null, 2)}\n`

async function refusal(action: Promise<unknown>): Promise<ConfigError> {
  const error = await action.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ConfigError)
  return error as ConfigError
}

describe('the file rollout store', () => {
  it('round-trips state and advances the revision on every save', async () => {
    expect(await store().load()).toBeUndefined()
    const first = await store().save(aState(), undefined, signal)
    const second = await store().save(aState({stepIndex: 1}), first.version, signal)
    expect(second.version).not.toBe(first.version)
    expect(await store().load()).toEqual({value: aState({stepIndex: 1}), version: second.version})
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({format: STATE_FORMAT, revision: 2})
  })

  it('refuses a save based on a stale version and keeps the newer state', async () => {
    const first = await store().save(aState(), undefined, signal)
    await store().save(aState({stepIndex: 1}), first.version, signal)
    await expect(store().save(aState({stepIndex: 2}), first.version, signal)).rejects.toBeInstanceOf(ConflictError)
    expect((await store().load())?.value.stepIndex).toBe(1)
  })

  it('stages a save invisibly: discard keeps the old state, commit makes the new one visible, and no temp file is left', async () => {
    const first = await store().save(aState(), undefined, signal)
    const discarded = await store().stage(aState({stepIndex: 1}), first.version, signal)
    expect((await store().load())?.value.stepIndex).toBe(0)
    await discarded.discard()
    expect((await store().load())?.value.stepIndex).toBe(0)
    const committed = await store().stage(aState({stepIndex: 2}), first.version, signal)
    expect((await store().load())?.value.stepIndex).toBe(0)
    await committed.commit(signal)
    expect((await store().load())?.value.stepIndex).toBe(2)
    expect((await readdir(dir)).sort()).toEqual(['state.json'])
  })

  it('refuses to stage a state that does not match its own schema (a bug), before writing anything', async () => {
    await store().save(aState(), undefined, signal)
    const before = await readFile(file, 'utf8')
    const error = await store().stage({...aState(), stepIndex: Number.NaN}, '1', signal).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(InternalError)
    expect((error as Error).message).toMatch(/does not match its own schema.*stepIndex/)
    expect(await readFile(file, 'utf8')).toBe(before)
    expect((await readdir(dir)).sort()).toEqual(['state.json'])
  })

  const valid = aState()
  const decision = valid.decisions[0]!
  it.each([
    ['truncated JSON', stored(valid).slice(0, 120), /is not valid JSON/, undefined],
    ['an empty file', '', /is empty/, undefined],
    ['an empty object', '{}', /format/, 'format'],
    ['stepIndex "two"', stored({...valid, stepIndex: 'two'}), /field state\.stepIndex: expected a number, found "two"/, 'state.stepIndex'],
    ['an unknown phase', stored({...valid, phase: 'Exploding'}), /field state\.phase: expected "Starting", .*found "Exploding"/, 'state.phase'],
    ['a wrong type deep inside', stored({...valid, decisions: [{...decision, canaryWeight: '20'}]}), /field state\.decisions\.0\.canaryWeight/, 'state.decisions.0.canaryWeight'],
    ['an extra field', stored({...valid, weight: 20}), /field state\.weight: unknown field/, 'state.weight'],
    ['an extra field deep inside', stored({...valid, decisions: [{...decision, note: 'x'}]}), /field state\.decisions\.0\.note: unknown field/, 'state.decisions.0.note'],
    ['an extra top-level field', stored(valid, {comment: 'hi'}), /field comment: unknown field/, 'comment'],
    ['a negative step index', stored({...valid, stepIndex: -1}), /field state\.stepIndex/, 'state.stepIndex'],
    ['a fractional look count', stored({...valid, looks: 1.5}), /field state\.looks/, 'state.looks'],
    ['an infinite time (1e999)', stored(valid).replace(/"startedAtMs": \d+/, '"startedAtMs": 1e999'), /field state\.startedAtMs/, 'state.startedAtMs'],
    ['a missing field', stored({...valid, name: undefined}), /field state\.name/, 'state.name'],
    ['a null state', stored(null), /field state/, 'state'],
    ['a revision 0', stored(valid).replace('"revision": 3', '"revision": 0'), /field revision/, 'revision'],
    ['a JSON array', '[]', /expected an object, found a list/, ''],
    ['a future format version', stored(valid).replace(STATE_FORMAT, 'canary.rollout/v2'), /written by a newer version of canary \(format "canary\.rollout\/v2"/, 'format'],
    ['an older format version', stored(valid).replace(STATE_FORMAT, 'canary.rollout/v0'), /written by another version of canary/, 'format'],
  ])('refuses a state file with %s by file and field, and never overwrites it', async (_name, content, message, field) => {
    await writeFile(file, content)
    const error = await refusal(store().load())
    expect(error.exitCode).toBe(ExitCode.Config)
    expect(error.message).toContain(file)
    expect(error.message).toMatch(message)
    if (field !== undefined) expect(error.problems.map((p) => p.path)).toContain(field)
    await refusal(store().save(aState(), '3', signal))
    await refusal(store().stage(aState(), '3', signal))
    expect(await readFile(file, 'utf8')).toBe(content)
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('refuses a directory in place of the state file', async () => {
    await mkdir(file)
    const error = await refusal(store().load())
    expect(error.message).toMatch(/state\.json: is a directory/)
    await refusal(store().save(aState(), undefined, signal))
  })

  it('refuses a symbolic link instead of following it, and leaves it in place', async () => {
    const elsewhere = join(dir, 'elsewhere.json')
    await writeFile(elsewhere, stored(valid))
    await symlink(elsewhere, file)
    const error = await refusal(store().load())
    expect(error.message).toMatch(/is a symbolic link/)
    await refusal(store().save(aState(), '3', signal))
    expect(await readFile(elsewhere, 'utf8')).toBe(stored(valid))
  })

  it('refuses a FIFO at once instead of blocking on it', async () => {
    execFileSync('mkfifo', [file])
    const error = await refusal(store().load())
    expect(error.message).toMatch(/is not a regular file/)
  })
})
