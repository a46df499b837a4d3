// Writes oclif.manifest.json so the CLI does not import every command file at start-up.
// Same output as `oclif manifest`, without pulling in the oclif dev tool and its dependencies.
import {writeFileSync} from 'node:fs'
import {Plugin} from '@oclif/core'

const plugin = new Plugin({root: process.cwd(), type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
await plugin.load()
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest, null, 2))
