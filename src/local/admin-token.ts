/** The release's admin token: shared by the proxy admin API and the daemon's control API; file mode 0600. */
import {randomBytes} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'

import {ConfigError, errnoOf, fileSystemError} from '../errors.js'
import {readRecordText} from './json-record.js'
import type {ReleasePaths} from './paths.js'

/** 24 random bytes in base64url, as written below; anything else (an empty file, say) is refused, never used. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{32}$/

const TOKEN_KIND = {
  what: 'admin token',
  suggestions: ['canary writes this file whole, so another program changed it.', '`canary down` stops the release\'s daemon and removes its files, token included; the next `canary start` makes a new one.'],
}

/** Reads or creates the token. */
export async function adminToken(paths: ReleasePaths): Promise<string> {
  const existing = await readToken(paths.adminToken)
  if (existing !== undefined) return existing
  const token = randomBytes(24).toString('base64url')
  try {
    await mkdir(paths.dir, {recursive: true, mode: 0o700})
    await writeFile(paths.adminToken, `${token}\n`, {mode: 0o600, flag: 'wx'})
    return token
  } catch (error) {
    // Another command created it first: use theirs.
    if (errnoOf(error) !== 'EEXIST') throw fileSystemError(error, paths.adminToken, 'write admin token')
  }
  const created = await readToken(paths.adminToken)
  if (created === undefined) throw fileSystemError(Object.assign(new Error('vanished'), {code: 'ENOENT'}), paths.adminToken, 'read admin token')
  return created
}

async function readToken(file: string): Promise<string | undefined> {
  const text = await readRecordText(file, TOKEN_KIND)
  if (text === undefined) return undefined
  const token = text.trim()
  if (!TOKEN_PATTERN.test(token)) {
    // An empty or short token would weaken (or, empty, disable) the admin API's authentication.
    throw new ConfigError(`${TOKEN_KIND.what} ${file}: corrupt: expected 32 base64url characters, found ${token.length === 0 ? 'an empty file' : `${token.length} characters`}`, [{location: {file}, path: '', message: 'expected 32 base64url characters'}], {subject: file, suggestions: TOKEN_KIND.suggestions})
  }
  return token
}

/** Where the release's bundled proxy serves its admin API, and the token it wants. */
export interface ProxyAdminEndpoint {
  readonly url: string
  readonly token: string
}
