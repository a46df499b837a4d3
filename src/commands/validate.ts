import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {ConfigError} from '../errors.js'
import {loadRelease, routerProblemsFor} from '../release/load-release.js'
import {ROUTER_KINDS, type RouterKind, type TargetKind} from '../release/release.js'
import {describeStep} from '../render/describe-step.js'

/** `canary validate --json` result. */
export interface ValidateResult {
  file: string
  valid: true
  release: string
  target: TargetKind
  router?: RouterKind
  totalWeight: number
  steps: string[]
}

export default class Validate extends BaseCommand<ValidateResult> {
  static override summary = 'Check a release spec and report every problem with file:line:column.'

  static override description = 'Exit 0 when the spec is valid, 3 with every problem (position, field, what was expected, did-you-mean) when it is not, 4 when the file does not exist. --router also checks that another router can do what the spec asks.'

  static override examples = [
    {description: 'Check ./canary.yaml.', command: '<%= config.bin %> validate'},
    {description: 'Check a file, machine-readable.', command: '<%= config.bin %> validate -f examples/my-app.yaml --json'},
    {description: 'Check that the spec also works with Traefik.', command: '<%= config.bin %> validate -f examples/my-app.yaml --router traefik'},
  ]

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    router: Flags.string({summary: 'Also check the spec against this router.', options: [...ROUTER_KINDS]}),
  }

  async run(): Promise<ValidateResult> {
    const {flags} = await this.parse(Validate)
    const loaded = await loadRelease(flags.file)
    const release = loaded.release
    const router = (flags.router as RouterKind | undefined) ?? release.ingress?.router
    if (flags.router !== undefined) {
      const problems = routerProblemsFor(loaded, flags.router as RouterKind)
      if (problems.length > 0) throw new ConfigError(`release spec ${flags.file}: not renderable for router ${flags.router}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, problems, {subject: flags.file, suggestions: ['See the capability table in docs/render.md.']})
    }
    const steps = release.steps.map((step) => describeStep(step))
    if (!this.jsonEnabled()) {
      this.log(`${flags.file}: ok: Release ${release.namespace}/${release.name}, target ${release.target}${router === undefined ? '' : `, router ${router}`}`)
      this.log(`  plan (weights out of ${release.totalWeight}): ${steps.join(' → ')}`)
    }
    return {file: flags.file, valid: true, release: `${release.namespace}/${release.name}`, target: release.target, ...(router === undefined ? {} : {router}), totalWeight: release.totalWeight, steps}
  }
}
