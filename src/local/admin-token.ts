/** The release's admin token: shared by the proxy admin API and the daemon's control API; file mode 0600. */
import {mkdir, readFile, writeFile} from 'node:fs/promises'

import type {ReleasePaths} from './paths.js'

/** Reads or creates the token. */
export async function adminToken(paths: ReleasePaths): Promise<string> {
  try {
    return (await readFile(paths.adminToken, 'utf8')).trim()
  } catch {
    const {randomBytes} = await import('node:crypto')
    const token = randomBytes(24).toString('base64url')
    await mkdir(paths.dir, {recursive: true, mode: 0o700})
    await writeFile(paths.adminToken, `${token}\n`, {mode: 0o600, flag: 'wx'}).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    })
    return (await readFile(paths.adminToken, 'utf8')).trim()
  }
}

/** Where the release's bundled proxy serves its admin API, and the token it wants. */
export interface ProxyAdminEndpoint {
  readonly url: string
  readonly token: string
}
