/**
 * `npm run bench:parse`: time to parse (and refuse) large and hostile release specs and proxy
 * configs, to show that parsing is linear in the input (issue #12 item 10: 1 MB of mapping keys
 * took 27 s, 5 MB over 120 s). Inputs are generated here; each line prints the input size, the
 * parse time, the throughput and the outcome (ok, or the first problem).
 *
 * Parsing above the 1 MiB file limit is measured with the limit lifted (the parsers take it as
 * an option), to show the growth past it; files that large are refused by `canary` before parsing.
 * `--smoke`: 16 KiB and 64 KiB inputs only, a few seconds. `--case NAME` runs the cases whose
 * name contains NAME; `--sizes 1024,5120` sets the sizes in KiB.
 */
import {loadavg} from 'node:os'
import {performance} from 'node:perf_hooks'

import {parseProxyConfig} from '../src/proxy/config.js'
import {parseRelease} from '../src/release/load-release.js'

const args = process.argv.slice(2)
const smoke = args.includes('--smoke')
const only = args.includes('--case') ? args[args.indexOf('--case') + 1] : undefined
const KIB = 1024
const MIB = 1024 * KIB
const sizesArg = args.includes('--sizes') ? args[args.indexOf('--sizes') + 1] : undefined
const sizes = sizesArg !== undefined ? sizesArg.split(',').map((s) => Number(s) * KIB) : smoke ? [16 * KIB, 64 * KIB] : [256 * KIB, MIB, 5 * MIB]
/** Past every size above: the default limit is what `canary` applies to files. */
const lifted = {limits: {maxBytes: 64 * MIB}}

const SPEC_HEAD = `apiVersion: canary.dev/v1alpha1
kind: Release
metadata:
  name: big
spec:
  image: ghcr.io/acme/app:v1
  port: 8080
  local: { upstreams: { stable: [http://127.0.0.1:9001], canary: [http://127.0.0.1:9002] } }
  steps: [50, 100]
`

const PROXY_HEAD = `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { name: r0, pathPrefix: /, service: s0 }
services:
`

/** Appends `line(i)` while the text stays within `bytes` (ASCII: characters are bytes). */
function fill(head: string, bytes: number, line: (i: number) => string, tail = ''): string {
  const parts = [head]
  let length = head.length + tail.length
  for (let i = 0; ; i++) {
    const next = line(i)
    if (length + next.length > bytes) break
    parts.push(next)
    length += next.length
  }
  parts.push(tail)
  return parts.join('')
}

interface Case {
  readonly name: string
  readonly make: (bytes: number) => string
  readonly parse: (text: string) => unknown
}

const spec = (text: string) => parseRelease(text, 'bench.yaml', lifted)
const proxy = (text: string) => parseProxyConfig(text, 'bench.yaml', {}, lifted)

const cases: Case[] = [
  {name: 'spec: env mapping of N keys (valid)', make: (bytes) => fill(`${SPEC_HEAD}  env:\n`, bytes, (i) => `    KEY_${i}: value-${i}\n`), parse: spec},
  {name: 'spec: N unknown fields (refused)', make: (bytes) => fill(SPEC_HEAD, bytes, (i) => `  unknown${i}: ${i}\n`), parse: spec},
  {name: 'spec: N duplicate keys (refused)', make: (bytes) => fill(`${SPEC_HEAD}  env:\n`, bytes, () => '    SAME: x\n'), parse: spec},
  {name: 'spec: one line, flow mapping of N keys', make: (bytes) => fill(`${SPEC_HEAD}  env: {`, bytes, (i) => `K${i}: v, `, 'END: v}\n'), parse: spec},
  {name: 'spec: N anchors and aliases (valid)', make: (bytes) => fill(`${SPEC_HEAD}  env:\n`, bytes, (i) => `    A${i}: &a${i} v\n    B${i}: *a${i}\n`), parse: spec},
  {name: 'proxy: services mapping of N services (valid)', make: (bytes) => fill(PROXY_HEAD, bytes, (i) => `  s${i}:\n    versions: [{ name: v1, servers: [http://127.0.0.1:${1000 + (i % 60000)}] }]\n`), parse: proxy},
  {name: 'proxy: N routes to missing services (refused)', make: (bytes) => fill(`${PROXY_HEAD}  s0: { versions: [{ name: v1, servers: [http://127.0.0.1:1] }] }\nroutes:\n`, bytes, (i) => `  - { name: r${i}, service: missing${i} }\n`).replace('routes:\n  - { name: r0, pathPrefix: /, service: s0 }\n', ''), parse: proxy},
  {name: 'proxy: N unknown fields (refused)', make: (bytes) => fill(PROXY_HEAD.replace('services:\n', 'services: { s0: { versions: [{ name: v1, servers: [http://127.0.0.1:1] }] } }\n'), bytes, (i) => `unknown${i}: ${i}\n`), parse: proxy},
]

function outcome(run: () => unknown): string {
  try {
    run()
    return 'ok'
  } catch (error) {
    const problems = (error as {problems?: {message: string}[]}).problems ?? []
    const first = problems[0]?.message ?? (error as Error).message
    return `refused: ${(error as Error).message.slice(0, 80)}${problems.length > 0 ? `; first: ${first.slice(0, 60)}` : ''}`
  }
}

if (smoke) console.log('smoke run (--smoke): every code path once, briefly; the figures are not measurements')
console.log(`bench:parse: sizes ${sizes.map((s) => `${s / KIB} KiB`).join(', ')}; one run each after a warm-up; CPU time (user + system, all threads) is steadier than wall time on a busy machine; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
for (const c of cases) {
  if (only !== undefined && !c.name.includes(only)) continue
  outcome(() => c.parse(c.make(16 * KIB)))
  const rows: string[] = []
  for (const bytes of sizes) {
    const text = c.make(bytes)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const result = outcome(() => c.parse(text))
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const cpuMs = (cpu.user + cpu.system) / 1000
    rows.push(`  ${(text.length / MIB).toFixed(2).padStart(5)} MiB: ${ms.toFixed(0).padStart(6)} ms wall, ${cpuMs.toFixed(0).padStart(6)} ms CPU, ${(text.length / MIB / (cpuMs / 1000)).toFixed(1).padStart(6)} MiB/CPU-s  ${result}`)
  }
  console.log(`parse ${c.name}`)
  for (const row of rows) console.log(row)
}
