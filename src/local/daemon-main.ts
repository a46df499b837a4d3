/**
 * Entry point of the per-release daemon (see daemon.ts), started detached by the CLI:
 * `node daemon-main.js <specFile> <release> <stableImage>`. Not an oclif command, so it starts
 * without loading the CLI.
 */
import {messageOf} from '../errors.js'
import {runDaemon} from './daemon.js'

const [specFile, releaseName, stableImage] = process.argv.slice(2)
if (specFile === undefined || releaseName === undefined || stableImage === undefined) {
  process.stderr.write('usage: daemon-main <specFile> <release> <stableImage>\n')
  process.exitCode = 2
} else {
  runDaemon({specFile, releaseName, stableImage}).catch((error: unknown) => {
    process.stderr.write(`${JSON.stringify({time: new Date().toISOString(), level: 'error', msg: 'daemon failed to start', error: messageOf(error)})}\n`)
    process.exitCode = 1
  })
}
