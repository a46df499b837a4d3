/**
 * Helpers for end-to-end lifecycle tests: a release spec on the built-in demo app in a temp dir,
 * the built CLI (`node bin/run.js`, or $CANARY_BIN), steady traffic, and cleanup of everything
 * the release started (via `canary down`, then the daemon's pid as a last resort).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

export const REPO = resolve(import.meta.dirname, '../..')
export const CLI = process.env.CANARY_BIN ?? join(REPO, 'bin/run.js')
const DEMO_APP = join(resolve(CLI, '../..'), 'dist/demo/app.js')

/** Options of the test release; the defaults give a fast, healthy rollout. */
export interface ReleaseOptions {
  readonly steps?: string
  readonly env?: Readonly<Record<string, string>>
  readonly readyTimeout?: string
  readonly analysis?: string
  /** Extra `spec:` lines (indented by two spaces), e.g. `  sticky: {cookie: shop-version}`. */
  readonly extraSpec?: readonly string[]
  /** `local.upstreams` instead of the demo app command: image or tag → server URLs. */
  readonly upstreams?: Readonly<Record<string, readonly string[]>>
}

/** A temp dir with a canary.yaml for release `shop` running the demo app. */
export async function aLocalRelease(options: ReleaseOptions = {}): Promise<{dir: string; spec: string}> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-e2e-'))
  const spec = join(dir, 'canary.yaml')
  const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')
  await writeFile(spec, [
    'apiVersion: canary.dev/v1alpha1',
    'kind: Release',
    'metadata: {name: shop}',
    'spec:',
    '  image: acme/shop:v1',
    '  port: 8080',
    '  probe: {path: /healthz}',
    `  env: {${env}}`,
    `  steps: ${options.steps ?? '[20, 50, 100]'}`,
    ...(options.extraSpec ?? []),
    `  analysis: ${options.analysis ?? '{interval: 1s, minRequests: 20, successRate: 99, failureLimit: 1, maxFalsePassRate: 0.2, tolerance: {errorRate: {points: 5}, latency: {points: 20}}}'}`,
    '  local:',
    options.upstreams === undefined
      ? `    command: ${JSON.stringify(`${JSON.stringify(process.execPath)} ${JSON.stringify(DEMO_APP)}`)}`
      : `    upstreams: ${JSON.stringify(options.upstreams)}`,
    '    listen: 127.0.0.1:0',
    `    readyTimeout: ${options.readyTimeout ?? '15s'}`,
    '',
  ].join('\n'))
  return {dir, spec}
}

/** The outcome of one CLI run. */
export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** stdout parsed as JSON, when it is. */
  readonly json: Record<string, unknown> | undefined
}

/** Runs `canary ARGS` in `cwd` and waits for it to exit. */
export function canary(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {cwd, env: {...process.env, NO_COLOR: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      let json: Record<string, unknown> | undefined
      try {
        json = JSON.parse(stdout) as Record<string, unknown>
      } catch {
        json = undefined
      }
      resolvePromise({code, stdout, stderr, json})
    })
  })
}

/** A `canary` process left running: its output so far, a wait on that output, and its end. */
export interface RunningCli {
  readonly child: ChildProcess
  readonly output: {stdout: string; stderr: string}
  /** Resolves with the first match of `pattern` in the stream; rejects when the process ends first. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpMatchArray>
  readonly exited: Promise<{readonly code: number | null; readonly signal: NodeJS.Signals | null}>
}

/** Starts `canary ARGS` in `cwd` without waiting for it (to signal it, or to watch it). */
export function startCanary(args: readonly string[], cwd: string): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], {cwd, env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
  const output = {stdout: '', stderr: ''}
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const waiter of [...waiters]) waiter()
  }
  child.stdout.on('data', (d: Buffer) => {
    output.stdout += d.toString()
    notify()
  })
  child.stderr.on('data', (d: Buffer) => {
    output.stderr += d.toString()
    notify()
  })
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolvePromise) => child.once('close', (code, signal) => resolvePromise({code, signal})))
  let ended = false
  void exited.then(() => {
    ended = true
    notify()
  })
  const waitFor = (stream: 'stdout' | 'stderr', pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolvePromise, reject) => {
      const check = () => {
        const match = output[stream].match(pattern)
        if (match !== null) {
          waiters.delete(check)
          resolvePromise(match)
        } else if (ended) {
          waiters.delete(check)
          reject(new Error(`canary ${args.join(' ')} ended before ${stream} matched ${pattern}:\n${output.stdout}\n${output.stderr}`))
        }
      }
      waiters.add(check)
      check()
    })
  return {child, output, waitFor, exited}
}

/** The daemon's address book for release `shop` in `dir`. */
export async function daemonInfo(dir: string): Promise<{pid: number; proxyUrl: string; controlUrl: string} | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, '.canary/shop/daemon.json'), 'utf8')) as {pid: number; proxyUrl: string; controlUrl: string}
  } catch {
    return undefined
  }
}

/** Steady traffic to `url` until stopped; resolves the number of responses per status class. */
export function traffic(url: string, ratePerSecond = 100): {stop: () => Promise<{ok: number; failed: number}>} {
  const counts = {ok: 0, failed: 0}
  const inFlight = new Set<Promise<void>>()
  const timer = setInterval(() => {
    const p = fetch(url).then(async (r) => {
      await r.arrayBuffer()
      if (r.status >= 500) counts.failed++
      else counts.ok++
    }, () => void counts.failed++).finally(() => inFlight.delete(p))
    inFlight.add(p)
  }, Math.round(1000 / ratePerSecond))
  return {
    stop: async () => {
      clearInterval(timer)
      await Promise.allSettled([...inFlight])
      return counts
    },
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Waits until `check` holds or `timeoutMs` passes (no fixed sleeps). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return check()
}

/** Stops everything the release in `dir` started and removes the dir. */
export async function cleanUp(dir: string): Promise<void> {
  const info = await daemonInfo(dir)
  const started = info !== undefined || (await readFile(join(dir, '.canary/shop/replica-groups.json'), 'utf8').then(() => true, () => false))
  if (started) await canary(['down', '-f', join(dir, 'canary.yaml')], dir)
  if (info !== undefined && alive(info.pid)) process.kill(info.pid, 'SIGKILL')
  await rm(dir, {recursive: true, force: true})
}
