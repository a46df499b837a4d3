import {access, writeFile} from 'node:fs/promises'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {ConflictError, UsageError} from '../errors.js'
import {dns1123LabelProblem} from '../release/dns.js'
import {ROUTER_KINDS, type RouterKind} from '../release/release.js'
import {MAX_RELEASE_NAME_LENGTH} from '../release/schema.js'
import {starterSpec} from '../release/starter.js'

/** `canary init --json` result. */
export interface InitResult {
  file: string
  name: string
  router: RouterKind
}

export default class Init extends BaseCommand<InitResult> {
  static override summary = 'Write a starter release spec with comments.'

  static override description = 'The spec passes `canary validate` as written; edit the image, port, host and plan. An existing file is never overwritten without --force (exit 5).'

  static override examples = [
    {description: 'Write ./canary.yaml for a release named my-app.', command: '<%= config.bin %> init my-app'},
    {description: 'Start from Gateway API, into another file.', command: '<%= config.bin %> init shop-api --router gateway-api -f shop-api.yaml'},
  ]

  static override args = {
    name: Args.string({description: 'Release name (a DNS-1123 label).', default: 'my-app'}),
  }

  static override flags = {
    router: Flags.string({summary: 'Router that splits traffic.', options: [...ROUTER_KINDS], default: 'nginx'}),
    file: Flags.string({char: 'f', summary: 'File to write.', default: 'canary.yaml'}),
    force: Flags.boolean({summary: 'Overwrite an existing file.'}),
  }

  async run(): Promise<InitResult> {
    const {args, flags} = await this.parse(Init)
    const problem = dns1123LabelProblem(args.name) ?? (args.name.length > MAX_RELEASE_NAME_LENGTH ? `must be at most ${MAX_RELEASE_NAME_LENGTH} characters` : /^[0-9]/.test(args.name) ? 'must start with a letter' : undefined)
    if (problem !== undefined) throw new UsageError(`release name "${args.name}" ${problem}`, {suggestions: ['Use lower-case letters, digits and "-", e.g. my-app.']})
    if (!flags.force && await exists(flags.file)) {
      throw new ConflictError(`${flags.file}: already exists; not overwriting it`, {subject: flags.file, suggestions: ['Pass --force to overwrite, or -f to write another file.']})
    }
    const router = flags.router as RouterKind
    await writeFile(flags.file, starterSpec(args.name, router))
    if (!this.jsonEnabled()) this.log(`wrote ${flags.file} (release ${args.name}, router ${router}); next: canary validate -f ${flags.file}`)
    return {file: flags.file, name: args.name, router}
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}
