/**
 * The render service behind `canary render`: picks the router, computes the state (images and
 * weights) from flags, builds every object, validates it, checks for colliding canary Ingresses
 * and serializes deterministically. Commands stay thin; the Kubernetes target reuses the builders.
 */
import {readFile} from 'node:fs/promises'

import {parseAllDocuments, stringify} from 'yaml'

import {ConfigError, InternalError, NotFoundError, UsageError, type ConfigProblem} from '../errors.js'
import {currentWeight} from '../rollout/core/plan.js'
import {stableWeight, weights as makeWeights, type Weights} from '../rollout/core/weights.js'
import {resolveCanaryImage} from '../release/image-ref.js'
import {routerProblemsFor, type LoadedRelease} from '../release/load-release.js'
import type {Release, RouterKind} from '../release/release.js'
import {routerRequiredIngressField} from '../routers/capabilities.js'
import {ROUTERS} from '../routers/index.js'
import type {RouterDefinition} from '../routers/router-definition.js'
import {describeStep} from './describe-step.js'
import {lineDiff} from './line-diff.js'
import {loadTemplates, type TemplateSet} from './template-set.js'
import type {BuildOptions, KubeObject, RenderState} from './types.js'
import {describeObject, objectProblems} from './validate-objects.js'
import {buildWorkloads} from './workloads.js'

/** What to render. */
export interface RenderRequest {
  /** Router to render for; the spec's when absent. */
  readonly router?: RouterKind
  /** `--image`: canary image ref or tag. */
  readonly image?: string
  /** `--weight`: canary weight (0..totalWeight). */
  readonly weight?: number
  /** `--step`: 1-based step whose resulting weight to render. */
  readonly step?: number
  /** `--templates DIR`. */
  readonly templatesDir?: string
  /** `--existing FILE`: objects already in the cluster, for the collision check. */
  readonly existingFile?: string
}

/** One rendered state. */
export interface RenderedState {
  /** Router used. */
  readonly router: RouterKind
  /** Images and weights. */
  readonly state: RenderState
  /** Objects in output order. */
  readonly objects: readonly KubeObject[]
}

/** One step of `--all-steps`. */
export interface RenderedStep extends RenderedState {
  /** 1-based step number. */
  readonly step: number
  /** The step, as written in the plan. */
  readonly description: string
  /** Per changed object: diff lines against the previous step. */
  readonly changes: ReadonlyArray<{readonly object: string; readonly diff: readonly string[]}>
}

/** Stable + canary workloads and the router's objects for `state`. */
export function buildReleaseObjects(release: Release, state: RenderState, router: RouterKind, options: BuildOptions = {}): KubeObject[] {
  return [...buildWorkloads(release, state, options), ...ROUTERS[router].build(release, state, options)]
}

/** Renders one state (flags → state → validated objects). */
export async function renderRelease(loaded: LoadedRelease, request: RenderRequest): Promise<RenderedState> {
  const {router, templates} = prepare(loaded, request)
  const state = stateFor(loaded.release, request)
  const objects = await checkedObjects(loaded.release, state, router, templates, request.templatesDir)
  if (request.existingFile !== undefined) assertNoCollision(objects, await readExisting(request.existingFile), router)
  return {router, state, objects}
}

/** Renders the state after every step, with what changed from the previous one. */
export async function renderAllSteps(loaded: LoadedRelease, request: RenderRequest): Promise<RenderedStep[]> {
  if (request.image === undefined) throw new UsageError('--all-steps needs --image: the plan moves traffic to a canary image', {suggestions: ['Add --image v2 (a tag for the spec image) or a full image reference.']})
  const {router, templates} = prepare(loaded, request)
  const release = loaded.release
  const existing = request.existingFile === undefined ? undefined : await readExisting(request.existingFile)
  const canaryImage = canaryImageFor(release, request.image)
  const rendered: RenderedStep[] = []
  let previous: readonly KubeObject[] = []
  for (const [index, step] of release.steps.entries()) {
    const state: RenderState = {stableImage: release.image.ref, canaryImage, weights: makeWeights(currentWeight(release, index), release.totalWeight)}
    const objects = await checkedObjects(release, state, router, templates, request.templatesDir)
    if (existing !== undefined) assertNoCollision(objects, existing, router)
    rendered.push({router, state, objects, step: index + 1, description: describeStep(step), changes: index === 0 ? [] : objectChanges(previous, objects)})
    previous = objects
  }
  return rendered
}

/** Objects as a multi-document YAML stream: same input, same bytes. */
export function toYaml(objects: readonly KubeObject[]): string {
  return objects.map((object) => stringify(object, {lineWidth: 0, aliasDuplicateObjects: false})).join('---\n')
}

function prepare(loaded: LoadedRelease, request: RenderRequest): {router: RouterKind; templates: TemplateSet} {
  const release = loaded.release
  if (release.ingress === undefined) {
    throw new ConfigError(`release spec ${loaded.file}: nothing to render without spec.ingress`, [{location: {file: loaded.file}, path: 'spec.ingress', message: 'render needs spec.ingress: expected {host, path, router}'}], {subject: loaded.file})
  }
  const router = request.router ?? release.ingress.router
  const problems: ConfigProblem[] = routerProblemsFor(loaded, router)
  const required = routerRequiredIngressField(router)
  if (required !== undefined && release.ingress[required.field] === undefined) {
    problems.push({location: loaded.locations.get('spec.ingress') ?? {file: loaded.file}, path: `spec.ingress.${required.field}`, message: `router ${router} needs spec.ingress.${required.field}: expected ${required.expected}`})
  }
  if (problems.length > 0) {
    throw new ConfigError(`release spec ${loaded.file}: cannot render for router ${router}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, problems, {subject: loaded.file, suggestions: ['See the capability table in docs/render.md.']})
  }
  return {router, templates: loadTemplates(request.templatesDir)}
}

function stateFor(release: Release, request: RenderRequest): RenderState {
  if (request.weight !== undefined && request.step !== undefined) throw new UsageError('--weight and --step are exclusive', {suggestions: ['Pass one of them.']})
  if (request.image === undefined) {
    if (request.weight !== undefined || request.step !== undefined) throw new UsageError('--weight and --step need --image: there is no canary to send traffic to', {suggestions: ['Add --image v2 (a tag for the spec image) or a full image reference.']})
    return {stableImage: release.image.ref, weights: makeWeights(0, release.totalWeight)}
  }
  const canaryImage = canaryImageFor(release, request.image)
  let canary = 0
  if (request.weight !== undefined) {
    if (!Number.isInteger(request.weight) || request.weight < 0 || request.weight > release.totalWeight) {
      throw new UsageError(`--weight ${request.weight} is out of range: expected a whole number from 0 to ${release.totalWeight} (spec.totalWeight)`)
    }
    canary = request.weight
  } else if (request.step !== undefined) {
    if (!Number.isInteger(request.step) || request.step < 1 || request.step > release.steps.length) {
      throw new UsageError(`--step ${request.step} is out of range: the plan has steps 1 to ${release.steps.length}`, {suggestions: ['Use --all-steps to see every step.']})
    }
    canary = currentWeight(release, request.step - 1)
  }
  return {stableImage: release.image.ref, canaryImage, weights: makeWeights(canary, release.totalWeight)}
}

function canaryImageFor(release: Release, image: string): string {
  try {
    return resolveCanaryImage(release.image, image).ref
  } catch (error) {
    throw new UsageError(`--image ${image}: ${(error as Error).message}`, {suggestions: ['Pass a tag (v2), a digest (sha256:…) or a full reference (ghcr.io/acme/my-app:v2).']})
  }
}

async function checkedObjects(release: Release, state: RenderState, router: RouterKind, templates: TemplateSet, templatesDir: string | undefined): Promise<KubeObject[]> {
  let objects: KubeObject[]
  try {
    objects = buildReleaseObjects(release, state, router, {templates})
  } catch (error) {
    if (templatesDir === undefined) throw error
    throw new ConfigError(`templates in ${templatesDir}: cannot be filled: ${(error as Error).message}`, [], {subject: templatesDir, cause: error})
  }
  const problems = await objectProblems(objects)
  if (problems.length === 0) return objects
  const first = problems[0]!
  const message = `${first.object}: rendered object is invalid: ${first.field === '' ? '' : `${first.field}: `}${first.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`
  const detail = problems.map((p) => ({path: `${p.object} ${p.field}`.trim(), message: p.message}))
  // With user templates the likely culprit is the template; otherwise it is a bug in canary.
  if (templatesDir !== undefined && Object.values(templates).some((t) => t.overridden)) {
    throw new ConfigError(message, detail, {subject: first.object, suggestions: [`Check the templates in ${templatesDir} against the bundled ones.`]})
  }
  throw new InternalError(message, {subject: first.object, suggestions: ['This is a bug in canary. Re-run with --verbose and report it with the spec.']})
}

function objectChanges(before: readonly KubeObject[], after: readonly KubeObject[]): Array<{object: string; diff: string[]}> {
  const text = (objects: readonly KubeObject[]) => new Map(objects.map((o) => [describeObject(o), stringify(o, {lineWidth: 0, aliasDuplicateObjects: false})]))
  const a = text(before)
  const b = text(after)
  const changes: Array<{object: string; diff: string[]}> = []
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const diff = lineDiff(a.get(key) ?? '', b.get(key) ?? '')
    if (diff.length > 0) changes.push({object: key, diff})
  }
  return changes
}

/** Reads `--existing`: a multi-document YAML stream or a `kind: List`. */
async function readExisting(file: string): Promise<KubeObject[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new NotFoundError(`existing objects file ${file}: not found`, {subject: file, suggestions: ['Produce it with: kubectl get ingress -A -o yaml > existing.yaml']})
  }
  const objects: KubeObject[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new ConfigError(`existing objects file ${file}: YAML syntax error: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`, [], {subject: file})
    const value = doc.toJS() as {kind?: string; items?: KubeObject[]} | null
    if (value === null) continue
    if (value.kind === 'List' || value.kind?.endsWith('List') === true) objects.push(...(value.items ?? []))
    else objects.push(value as KubeObject)
  }
  return objects
}

/** Refuses rendered objects that would fight objects already in the cluster, by the router's own rule (ingress-nginx has one). */
export function assertNoCollision(rendered: readonly KubeObject[], existing: readonly KubeObject[], router: RouterKind): void {
  const definition: RouterDefinition = ROUTERS[router]
  definition.checkCollisions?.(rendered, existing)
}

/** The weights a state renders, for summaries. */
export function describeWeights(w: Weights): string {
  return `canary ${w.canary}/${w.total}, stable ${stableWeight(w)}/${w.total}`
}
