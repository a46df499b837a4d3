/**
 * What bin/run.js runs: loads the CLI bundle (dist/cli/canary.cjs) through the V8 code cache and
 * hands over to oclif. Built to its own small file so the cache can cover the whole bundle.
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import type {execute} from '@oclif/core'

import {codeCachePath, requireWithCodeCache} from './code-cache.js'

/** Runs the CLI of the package at `root` (the directory holding its package.json). */
export async function boot(root: string): Promise<void> {
  const bundle = join(root, 'dist', 'cli', 'canary.cjs')
  if (!existsSync(bundle)) {
    process.stderr.write(`canary: ${bundle} is missing; run \`npm run build\` in ${root}\n`)
    process.exitCode = 1
    return
  }
  const {exports, outcome} = requireWithCodeCache(bundle, codeCachePath(bundle, process.argv[2] ?? ''))
  if (process.env.CANARY_CODE_CACHE_DEBUG === '1') process.stderr.write(`canary: code cache ${outcome}\n`)
  await (exports as {execute: typeof execute}).execute({dir: root})
}
