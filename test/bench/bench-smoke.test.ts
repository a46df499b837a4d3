// Every `bench:*` script in package.json, run in its smoke mode (`npm run bench:X -- --smoke`) as a
// child process, so that no benchmark can rot unnoticed: `bench:proxy` once stopped at once on every
// built checkout (issue #12) and nobody saw it. Each run must exit 0, say that it ran as a smoke run
// (a bench that ignores --smoke fails here) and print its figure lines. A new bench script fails the
// first test until its figure lines are listed below. Needs the built CLI, nginx and wrk (.ci/run
// installs them); a missing one fails with the bench's message naming it.
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const ROOT = join(import.meta.dirname, '../..')
const scripts = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {scripts: Record<string, string>}).scripts).filter((name) => name.startsWith('bench:'))

const number = String.raw`\d+(\.\d+)?`
/** Lines each bench prints with figures in them (figures of a smoke run are not judged, only present). */
const FIGURES: Record<string, readonly RegExp[]> = {
  'bench:proxy': [
    ...['nginx \\(2 workers\\)', 'canary proxy \\(1 worker\\)', 'canary proxy --workers 2', 'http-proxy \\(1 process\\)', 'floor: bare undici stream'].map((row) => new RegExp(`^\\| ${row} \\| ${number} \\| ${number}% \\| ${number} \\| ${number} \\| ${number} \\| ${number} / ${number} \\| ${number} \\| \\d+ \\|$`, 'm')),
    new RegExp(`^split canary proxy \\(1 worker\\): v1 \\d+, v2 \\d+ → v2 share ${number}%$`, 'm'),
    new RegExp(`^split canary proxy --workers 2: v1 \\d+, v2 \\d+ → v2 share ${number}%$`, 'm'),
    /^(PASS|FAIL) {2}no failed requests through canary: \d+$/m,
  ],
  'bench:proxy:tls': [
    ...['http/1.1 \\| nginx TLS \\(2 workers\\)', 'http/1.1 \\| canary TLS \\(1 worker\\)', 'http/1.1 \\| canary TLS --workers 2', 'h2 \\| nginx TLS \\(2 workers\\)', 'h2 \\| canary TLS \\(1 worker\\)', 'h2 \\| canary TLS --workers 2'].map((row) => new RegExp(`^\\| ${row} \\| ${number} \\| ${number}% \\| ${number} \\| \\d+ \\|$`, 'm')),
  ],
  'bench:proxy:reliability': [
    /^phase 1: \d+ requests under \d+ weight changes \(\d+ refused\) and \d+ reloads \(\d+ refused\): \d+ failed requests/m,
    /^phase 2: \d+ requests, one of v1's two upstreams killed after \d+ s: \d+ failed requests .*, \d+ retries; killed server healthy: (true|false) → (true|false)$/m,
    /^(PASS|FAIL) {2}the killed upstream is marked unhealthy$/m,
    /^phase 3: with \d+ slow clients connected \(\d+ still connected at the end\): \d+ req\/s, p50 [\d.]+ ms, p99 [\d.]+ ms, \d+ failed/m,
    /^phase 4: access log on an unread stdout pipe: \d+ requests, \d+ failed, \d+ req\/s; \d+ lines dropped; worker RSS \d+ MB → max \d+ MB$/m,
  ],
  // Loose on purpose: the judge's scenarios change; any line with a percentage is a figure.
  'bench:judgment': [new RegExp(`^.*rolled back.*${number} %`, 'm')],
  'bench:local': [
    /^canary step wall time over \d+ runs: median \d+ ms, p90 \d+ ms/m,
    new RegExp(`^canary turning bad .* → weight 0: ${number} s; worst ${number} intervals`, 'm'),
  ],
  // Its smoke run starts no cluster (that needs `npm run cluster:up`'s Go builds); it checks the pins and the cache.
  'bench:cluster': [/^pinned: .+/m, /^kube-apiserver: (cached|not built yet) \(.+\)$/m],
  'bench:parse': [
    ...['spec: env mapping', 'spec: N unknown fields', 'spec: N duplicate keys', 'spec: N anchors', 'proxy: services mapping', 'proxy: N routes'].map((name) => new RegExp(`^parse ${name}.*\\n +${number} MiB: +\\d+ ms wall, +\\d+ ms CPU`, 'm')),
  ],
}

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly seconds: number
}

/** Two runs at a time (the machine has 2 cores; the runs mostly wait on servers starting and wrk's fixed seconds). */
const LANES = 2
let running = 0
const waiting: Array<() => void> = []
async function inLane<T>(task: () => Promise<T>): Promise<T> {
  while (running >= LANES) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await task()
  } finally {
    running--
    waiting.shift()?.()
  }
}

function runSmoke(script: string): Promise<Run> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', script, '--', '--smoke'], {cwd: ROOT, env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('error', reject)
    child.once('close', (code) => resolve({code, stdout, stderr, seconds: (Date.now() - started) / 1000}))
  })
}

describe('benchmarks', () => {
  it('every bench:* script in package.json has its figure lines listed here', () => {
    expect(scripts.length).toBeGreaterThan(0)
    const unlisted = scripts.filter((script) => FIGURES[script] === undefined)
    expect(unlisted, `give each new bench a --smoke mode and list its figure lines in FIGURES: ${unlisted.join(', ')}`).toEqual([])
  })

  // Two lanes, the longest run (bench:local, ~20 s) first: about 30 s in all on an idle machine.
  describe.concurrent('runs in smoke mode and prints its figures', () => {
    for (const script of [...scripts].sort((a, b) => Number(b === 'bench:local') - Number(a === 'bench:local'))) {
      it(`npm run ${script} -- --smoke`, {timeout: 240_000}, async () => {
        const run = await inLane(() => runSmoke(script))
        const output = `exit ${run.code} after ${run.seconds.toFixed(1)} s\n--- stdout\n${run.stdout.slice(-3000)}\n--- stderr\n${run.stderr.slice(-3000)}`
        expect(run.code, output).toBe(0)
        expect(run.stdout, output).toContain('smoke run (--smoke)')
        for (const line of FIGURES[script] ?? []) expect(run.stdout, `${line} missing\n${output}`).toMatch(line)
      })
    }
  })
})
