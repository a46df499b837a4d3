/**
 * Entry point of the per-release daemon (see daemon.ts), started detached by the CLI:
 * `node daemon-main.js <specFile> <release> <stableImage>`. Not an oclif command, so it starts
 * without loading the CLI.
 */
import {messageOf} from '../errors.js'
import {runDaemon} from './daemon.js'

// stdout and stderr are daemon.log on the release's disk: when that disk is full, log lines are
// lost, but an unhandled stream 'error' must not take the proxy down with them.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined)

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
