// The one test command (`npm test`): lint, typecheck, build the CLI (end-to-end tests spawn
// bin/run.js), then the whole vitest suite. Ends with a plain "N passed, N failed" line for CI.
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, rmSync} from 'node:fs'

/** promtool and nginx are used by real-component tests; install them from Debian when we can. */
function ensureSystemTools() {
  const missing = [['promtool', 'prometheus'], ['nginx', 'nginx-light']].filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
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
const extra = process.argv.slice(2)
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
const report = '.vitest-report.json'
rmSync(report, {force: true})
const rc = step('tests', npx, ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra])
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'))
  const skipped = r.numPendingTests + (r.numTodoTests ?? 0)
  console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
} else {
  console.log('\n0 passed, 1 failed')
}
process.exit(rc)
