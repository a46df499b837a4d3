/**
 * A parsed-release cache for the lifecycle commands. Parsing a spec loads yaml and zod (~150 ms
 * of a CLI start); CI calls `canary step`/`status` many times with the same
 * file. The cache is keyed by the SHA-256 of the file's bytes, so any edit is a miss; a miss (or
 * any problem with the cache) parses the file for real, which also produces the located errors.
 */
import {createHash} from 'node:crypto'
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'

import {readConfigBytes} from '../config-file/read-config-file.js'
import {NotFoundError} from '../errors.js'
import type {Release} from '../release/release.js'

/** Bump when the Release type changes shape, so old cache entries are ignored. */
const CACHE_FORMAT = 'canary.release-cache/v1'

/** The release in `file`, from the cache when the bytes are unchanged. */
export async function loadReleaseCached(file: string): Promise<Release> {
  let text: Buffer | undefined
  try {
    // The same checks as loadRelease (a FIFO or a huge file is refused, never read); any refusal
    // leaves the parse below to report it.
    text = await readConfigBytes(file, {label: 'release spec', missing: (missing) => new NotFoundError(missing)})
  } catch {
    text = undefined
  }
  const key = text === undefined ? undefined : createHash('sha256').update(CACHE_FORMAT).update(text).digest('hex')
  const cacheFile = key === undefined ? undefined : join(dirname(resolve(file)), '.canary', 'spec-cache', `${key.slice(0, 32)}.json`)
  if (cacheFile !== undefined) {
    try {
      const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as {key: string; release: Release}
      if (cached.key === key) return cached.release
    } catch {
      // Miss: parse below.
    }
  }
  const {loadRelease} = await import('../release/load-release.js')
  const {release} = await loadRelease(file)
  if (cacheFile !== undefined) {
    const temp = `${cacheFile}.${process.pid}.tmp`
    try {
      await mkdir(dirname(cacheFile), {recursive: true, mode: 0o700})
      await writeFile(temp, JSON.stringify({key, release}))
      await rename(temp, cacheFile)
    } catch {
      // A read-only directory only costs the next command a parse; a full disk must not keep the partial temp file.
      await rm(temp, {force: true}).catch(() => undefined)
    }
  }
  return release
}
