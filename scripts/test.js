// The one test command (`npm test`): lint, typecheck, build the CLI (end-to-end tests spawn
// bin/run.js), the fast vitest suite, then the cluster suite (vitest.cluster.config.ts: a real
// kube-apiserver, etcd, Traefik and Prometheus, brought up and down by its global setup). Ends with
// one plain "N passed, N failed" line summing both, for CI. `npm run test:fast` (`--fast`) skips
// the cluster suite while developing.
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, rmSync} from 'node:fs'

/** promtool, nginx, wrk and h2load are used by real-component tests and the benchmarks' smoke runs; install them from Debian when we can. */
function ensureSystemTools() {
  const missing = [['promtool', 'prometheus'], ['nginx', 'nginx-light'], ['wrk', 'wrk'], ['h2load', 'nghttp2-client']].filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
  if (missing.length === 0) return
  const packages = missing.map(([, pkg]) => pkg)
  if (process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0) {
    console.log(`setup: installing ${packages.join(' ')} from Debian…`)
    spawnSync('apt-get', ['update', '-qq'], {stdio: 'inherit'})
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {stdio: 'inherit', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  } else {
    console.log(`warning: ${missing.map(([b]) => b).join(', ')} not found; install Debian packages ${packages.join(' ')} (tests that use them will fail)`)
  }
}

function step(title, command, args) {
  console.log(`\n== ${title}: ${command} ${args.join(' ')}`)
  const r = spawnSync(command, args, {stdio: 'inherit', env: process.env})
  return r.status ?? 1
}

import {ensureDependencies} from './setup.js'

ensureDependencies()
ensureSystemTools()
const npx = 'npx'
const fast = process.argv.includes('--fast')
const extra = process.argv.slice(2).filter((a) => a !== '--fast')
for (const [title, args] of [['lint', ['eslint', '.']], ['typecheck', ['tsc', '-p', 'tsconfig.json', '--noEmit']], ['typecheck tests', ['tsc', '-p', 'tsconfig.test.json', '--noEmit']]]) {
  if (step(title, npx, args) !== 0) {
    console.log(`\n0 passed, 1 failed`)
    console.log(`${title} failed`)
    process.exit(1)
  }
}
if (step('build', 'npm', ['run', '--silent', 'build']) !== 0) {
  console.log('\n0 passed, 1 failed')
  process.exit(1)
}

/** Runs one vitest suite; its counts from the JSON report (a suite that produced none counts as one failure). */
function suite(title, config, report) {
  rmSync(report, {force: true})
  const rc = step(title, npx, ['vitest', 'run', ...(config === undefined ? [] : ['-c', config]), '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra])
  if (!existsSync(report)) return {rc: rc === 0 ? 1 : rc, passed: 0, failed: 1, skipped: 0}
  const r = JSON.parse(readFileSync(report, 'utf8'))
  // A failing global setup (e.g. the cluster could not start) fails the run without failing a test.
  const failed = r.numFailedTests + (rc !== 0 && r.numFailedTests === 0 ? 1 : 0)
  return {rc, passed: r.numPassedTests, failed, skipped: r.numPendingTests + (r.numTodoTests ?? 0)}
}

const results = [suite('tests', undefined, '.vitest-report.json')]
if (!fast) results.push(suite('cluster tests (real kube-apiserver and Traefik)', 'vitest.cluster.config.ts', '.vitest-cluster-report.json'))
const total = results.reduce((sum, r) => ({passed: sum.passed + r.passed, failed: sum.failed + r.failed, skipped: sum.skipped + r.skipped}), {passed: 0, failed: 0, skipped: 0})
console.log(`\n${total.passed} passed, ${total.failed} failed${total.skipped > 0 ? `, ${total.skipped} skipped` : ''}`)
process.exit(results.find((r) => r.rc !== 0)?.rc ?? 0)
