import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import type {Weights} from '../rollout/core/weights.js'
import {loadRelease} from '../release/load-release.js'
import {ROUTER_KINDS, type RouterKind} from '../release/release.js'
import {describeWeights, renderAllSteps, renderRelease, toYaml, type RenderRequest} from '../render/render-release.js'
import type {KubeObject} from '../render/types.js'
import {routerOf} from '../routers/index.js'

/** `canary render --json` result: one state, or every step with `--all-steps`. */
export interface RenderResult {
  router: RouterKind
  steps: Array<{step?: number; description?: string; stableImage: string; canaryImage?: string; weights: Weights; objects: readonly KubeObject[]; changes?: ReadonlyArray<{object: string; diff: readonly string[]}>}>
  written?: string[]
  /** With --rbac: the ServiceAccount, Role and RoleBinding canary needs on a cluster (#5). */
  rbac?: readonly KubeObject[]
}

export default class Render extends BaseCommand<RenderResult> {
  static override summary = 'Print (or write) the Kubernetes objects of a release for a given state.'

  static override description = `Renders the stable and canary Deployments and Services and the chosen router's objects. Without --image only the stable track is rendered; with --image and neither --weight nor --step the canary gets weight 0 (deployed, reached only through header/cookie matches). Every object is validated against the official schemas before it is printed. Output is deterministic. Templates come from templates/; --templates DIR overrides any of them by file name.`

  static override examples = [
    {description: 'Render the example spec (stable only).', command: '<%= config.bin %> render -f examples/my-app.yaml'},
    {description: 'Render the state after step 3 with canary image tag v2.', command: '<%= config.bin %> render -f examples/my-app.yaml --image v2 --step 3'},
    {description: 'Review every step and what changes between them.', command: '<%= config.bin %> render -f examples/my-app.yaml --image v2 --all-steps'},
    {description: 'Render for Traefik at 30 % and write one file per object.', command: '<%= config.bin %> render -f examples/my-app.yaml --image v2 --weight 30 --router traefik -o out/'},
    {description: 'Print the least-privilege ServiceAccount, Role and RoleBinding for running canary from CI.', command: '<%= config.bin %> render -f examples/my-app.yaml --rbac'},
  ]

  static override flags = {
    file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
    image: Flags.string({summary: 'Canary image: a tag for the spec image (v2), a digest (sha256:…) or a full reference.'}),
    weight: Flags.integer({summary: 'Canary weight (0 to spec.totalWeight).', min: 0, exclusive: ['step', 'all-steps']}),
    step: Flags.integer({summary: 'Render the weight in force after step K (1-based).', min: 1, exclusive: ['weight', 'all-steps']}),
    'all-steps': Flags.boolean({summary: 'Render every step and show what changes from one to the next.', exclusive: ['weight', 'step']}),
    router: Flags.string({summary: "Router to render for (default: the spec's spec.ingress.router).", options: [...ROUTER_KINDS]}),
    output: Flags.string({char: 'o', summary: 'Write one YAML file per object into this directory instead of printing.'}),
    templates: Flags.string({summary: 'Directory whose <name>.yaml files override the bundled templates.'}),
    existing: Flags.string({summary: "YAML of the cluster's current objects (e.g. kubectl get ingress -A -o yaml); colliding canary Ingresses are refused (exit 5)."}),
    rbac: Flags.boolean({summary: 'Print the ServiceAccount, Role and RoleBinding canary needs in the namespace (least privilege for the router) instead.', exclusive: ['image', 'weight', 'step', 'all-steps']}),
    // No oclif default here: a default value counts as "provided" and would make dependsOn fail every render.
    'service-account': Flags.string({summary: 'ServiceAccount name for --rbac (default: canary).', dependsOn: ['rbac']}),
  }

  async run(): Promise<RenderResult> {
    const {flags} = await this.parse(Render)
    const loaded = await loadRelease(flags.file)
    if (flags.rbac) {
      const {buildRbac} = await import('../targets/kubernetes/rbac.js')
      const release = flags.router === undefined || loaded.release.ingress === undefined ? loaded.release : {...loaded.release, ingress: {...loaded.release.ingress, router: flags.router as RouterKind}}
      const rbac = buildRbac(release, flags['service-account'] ?? 'canary') as unknown as KubeObject[]
      const written = flags.output === undefined ? undefined : await writeObjects(flags.output, rbac)
      if (!this.jsonEnabled()) {
        if (written === undefined) process.stdout.write(toYaml(rbac))
        else this.log(`wrote ${written.length} files to ${flags.output}`)
      }
      return {router: routerOf(release), steps: [], rbac, ...(written === undefined ? {} : {written})}
    }
    const request: RenderRequest = {
      ...(flags.router === undefined ? {} : {router: flags.router as RouterKind}),
      ...(flags.image === undefined ? {} : {image: flags.image}),
      ...(flags.weight === undefined ? {} : {weight: flags.weight}),
      ...(flags.step === undefined ? {} : {step: flags.step}),
      ...(flags.templates === undefined ? {} : {templatesDir: flags.templates}),
      ...(flags.existing === undefined ? {} : {existingFile: flags.existing}),
    }
    if (flags['all-steps']) {
      const steps = await renderAllSteps(loaded, request)
      const written: string[] = []
      if (flags.output !== undefined) {
        for (const step of steps) written.push(...await writeObjects(join(flags.output, `step-${String(step.step).padStart(2, '0')}`), step.objects))
      }
      if (!this.jsonEnabled()) {
        for (const step of steps) {
          this.log(`# step ${step.step}/${steps.length}: ${step.description} (${describeWeights(step.state.weights)})`)
          if (step.step === 1) {
            if (flags.output === undefined) this.log(toYaml(step.objects))
            continue
          }
          if (step.changes.length === 0) this.log('#   no changes')
          for (const change of step.changes) this.log([`#   ${change.object}`, ...change.diff.map((line) => `    ${line}`)].join('\n'))
        }
        if (flags.output !== undefined) this.log(`wrote ${written.length} files to ${flags.output}`)
      }
      return {router: steps[0]?.router ?? (flags.router as RouterKind), steps: steps.map((s) => ({step: s.step, description: s.description, ...stateFields(s.state), objects: s.objects, changes: s.changes})), ...(flags.output === undefined ? {} : {written})}
    }
    const rendered = await renderRelease(loaded, request)
    if (flags.output !== undefined) {
      const written = await writeObjects(flags.output, rendered.objects)
      if (!this.jsonEnabled()) this.log(`wrote ${written.length} files to ${flags.output}`)
      return {router: rendered.router, steps: [{...stateFields(rendered.state), objects: rendered.objects}], written}
    }
    if (!this.jsonEnabled()) process.stdout.write(toYaml(rendered.objects))
    return {router: rendered.router, steps: [{...stateFields(rendered.state), objects: rendered.objects}]}
  }
}

function stateFields(state: {stableImage: string; canaryImage?: string; weights: Weights}): {stableImage: string; canaryImage?: string; weights: Weights} {
  return {stableImage: state.stableImage, ...(state.canaryImage === undefined ? {} : {canaryImage: state.canaryImage}), weights: state.weights}
}

/** One file per object, `NN-kind-name.yaml`, numbered in apply order. */
async function writeObjects(dir: string, objects: readonly KubeObject[]): Promise<string[]> {
  await mkdir(dir, {recursive: true})
  const files: string[] = []
  for (const [index, object] of objects.entries()) {
    const file = join(dir, `${String(index + 1).padStart(2, '0')}-${object.kind.toLowerCase()}-${object.metadata.name}.yaml`)
    await writeFile(file, toYaml([object]))
    files.push(file)
  }
  return files
}
