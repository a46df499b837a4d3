// Makes a fresh clone runnable: installs dependencies when node_modules is missing or older than
// the lockfile, and builds dist/ + the oclif manifest when they are missing or older than src/.
// Used by `npm test` and `npm run canary`, so the README's commands need no other set-up.
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

function run(command, args) {
  const r = spawnSync(command, args, {stdio: ['ignore', 'inherit', 'inherit'], env: process.env})
  if (r.status !== 0) {
    console.error(`setup: ${command} ${args.join(' ')} failed (exit ${r.status})`)
    process.exit(r.status ?? 1)
  }
}

function newest(dir) {
  let t = 0
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const p = join(dir, entry.name)
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

export function ensureDependencies() {
  const marker = 'node_modules/.package-lock.json'
  if (!existsSync(marker) || statSync(marker).mtimeMs < statSync('package-lock.json').mtimeMs) {
    console.error('setup: installing dependencies (npm ci)…')
    run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'])
  }
}

export function ensureBuilt({force = false} = {}) {
  const built = existsSync('oclif.manifest.json') && existsSync('dist')
  if (force || !built || newest('src') > statSync('oclif.manifest.json').mtimeMs) {
    console.error('setup: building (esbuild bundles + oclif manifest)…')
    run('npm', ['run', '--silent', 'build'])
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureDependencies()
  ensureBuilt()
}
