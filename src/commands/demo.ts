import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {ProgressPrinter, formatStatus, styleFor} from '../cli/progress.js'
import {openSession} from '../cli/session.js'
import {runDemo, type DemoResult} from '../demo/demo-release.js'

export type {DemoResult} from '../demo/demo-release.js'

const TRAFFIC_RPS = 50
const BAD_ERROR_PERCENT = 15

export default class Demo extends BaseCommand<DemoResult> {
  static override summary = 'Watch a whole canary release on this machine: no setup, about half a minute.'

  static override description = `Starts the bundled proxy, v1 and v2 of a tiny built-in app and steady traffic (${TRAFFIC_RPS} requests/s), then runs the release 20 % → 50 % → 100 % with a 3 s analysis interval: v2 is promoted (exit 0). With --bad, v2 answers 500 to ${BAD_ERROR_PERCENT} % of its requests and the rollout rolls back by itself (exit 10). Everything is stopped and removed at the end.`

  static override examples = [
    {description: 'A healthy release, promoted.', command: '<%= config.bin %> demo'},
    {description: 'A bad release, rolled back automatically.', command: '<%= config.bin %> demo --bad'},
  ]

  static override flags = {
    bad: Flags.boolean({summary: `Make v2 answer 500 to ${BAD_ERROR_PERCENT} % of its requests.`}),
  }

  async run(): Promise<DemoResult> {
    const {flags} = await this.parse(Demo)
    const dir = await mkdtemp(join(tmpdir(), 'canary-demo-'))
    const specFile = join(dir, 'canary.yaml')
    await writeFile(specFile, demoSpec(flags.bad))
    const json = this.jsonEnabled()
    const printer = new ProgressPrinter(process.stderr, !json)
    try {
      const session = await openSession(specFile, undefined, printer.onTick)
      printer.setPlan(session.plan.totalWeight, session.plan.steps.length)
      if (!json) this.logToStderr(`demo: starting the proxy and v1 (spec ${specFile})`)
      const result = await runDemo(session, {
        canaryImage: 'canary-demo/app:v2',
        ratePerSecond: TRAFFIC_RPS,
        timeoutMs: 120_000,
        signal: this.signal,
        onTraffic: (proxyUrl) => {
          if (!json) this.logToStderr(`demo: proxy on ${proxyUrl}, sending ${TRAFFIC_RPS} requests/s; releasing v2${flags.bad ? ` (bad: ${BAD_ERROR_PERCENT} % errors)` : ''}`)
        },
      })
      printer.end()
      if (!json) {
        this.log(formatStatus(result.status, styleFor(process.stdout), 0))
        this.log(`traffic: ${result.traffic.sent} requests: ${Object.entries(result.traffic.byVersion).map(([v, c]) => `${v} ${c.ok} ok, ${c.failed} failed`).join('; ')}`)
        this.log(result.exitCode === 0 ? 'demo: v2 promoted.' : `demo: v2 ${result.outcome} (exit ${result.exitCode}).`)
      }
      if (result.exitCode !== 0) this.setOutcome(result.exitCode)
      return result
    } finally {
      printer.end()
      await rm(dir, {recursive: true, force: true})
    }
  }
}

/** The demo's release spec: the real loader reads it, like any user's. */
function demoSpec(bad: boolean): string {
  const app = fileURLToPath(new URL('../demo/app.js', import.meta.url))
  return [
    'apiVersion: canary.dev/v1alpha1',
    'kind: Release',
    'metadata:',
    '  name: demo',
    'spec:',
    '  image: canary-demo/app:v1',
    '  port: 8080',
    '  probe: { path: /healthz }',
    `  env: { DEMO_BAD_IMAGE: "canary-demo/app:v2", DEMO_ERROR_PERCENT: "${bad ? BAD_ERROR_PERCENT : 0}" }`,
    '  steps: [20, 50, 100]',
    // A demo-sized judge: a minute of synthetic traffic cannot prove a 0.1-point tolerance (docs/analysis.md).
    '  analysis: { interval: 3s, minRequests: 30, successRate: 99, latencyP99: 500ms, failureLimit: 1, maxFalsePassRate: 0.2, tolerance: { errorRate: { points: 5 }, latency: { points: 20 } } }',
    '  local:',
    `    command: ${JSON.stringify(`${JSON.stringify(process.execPath)} ${JSON.stringify(app)}`)}`,
    '    listen: 127.0.0.1:0',
    '    readyTimeout: 20s',
    '',
  ].join('\n')
}
