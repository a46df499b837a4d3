/**
 * The templates canary renders from: the bundled ones in `templates/`, each replaceable by a
 * file of the same name in a user's `--templates DIR`. Reading happens here, once; builders get
 * a `TemplateSet` and stay pure.
 */
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {ConfigError, NotFoundError} from '../errors.js'
import {didYouMean} from '../config-file/did-you-mean.js'
import {parseTemplate, type Template} from './template.js'

/** Every template and the placeholders it may use. */
export const TEMPLATE_PLACEHOLDERS = {
  deployment: ['name', 'namespace', 'labels', 'selector', 'podLabels', 'replicas', 'image', 'port', 'env', 'resources', 'readinessProbe', 'livenessProbe', 'affinity', 'track', 'release'],
  service: ['name', 'namespace', 'labels', 'selector', 'port', 'track', 'release'],
  ingress: ['name', 'namespace', 'labels', 'annotations', 'className', 'tls', 'rules', 'release'],
  'traefik-service': ['apiVersion', 'name', 'namespace', 'labels', 'spec', 'release'],
  'ingress-route': ['apiVersion', 'name', 'namespace', 'labels', 'routes', 'tls', 'release'],
  'http-route': ['name', 'namespace', 'labels', 'parentRefs', 'hostnames', 'rules', 'release'],
  'config-map': ['name', 'namespace', 'labels', 'data', 'release'],
  'proxy-deployment': ['name', 'namespace', 'labels', 'selector', 'replicas', 'image', 'configMap', 'configFile', 'port', 'adminPort', 'checksum', 'release', 'serviceAccount', 'adminSecret', 'adminSecretKey', 'adminTokenEnv'],
  'proxy-service': ['name', 'namespace', 'labels', 'selector', 'port', 'release'],
} as const satisfies Record<string, readonly string[]>

/** Name of one template (file `templates/<name>.yaml`). */
export type TemplateName = keyof typeof TEMPLATE_PLACEHOLDERS
/** One parsed template per name. */
export type TemplateSet = Readonly<Record<TemplateName, Template>>

/** The bundled templates directory (same relative path from src/render and from any dist/ chunk: scripts/build.js). */
export const BUNDLED_TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url))

let bundled: TemplateSet | undefined

/** The bundled templates, read once. */
export function bundledTemplates(): TemplateSet {
  bundled ??= readTemplates(BUNDLED_TEMPLATES_DIR, undefined)
  return bundled
}

/**
 * Bundled templates with overrides from `dir`: every `<name>.yaml` there replaces the bundled one.
 * A file that matches no template is refused (a typo would otherwise be silently ignored).
 */
export function loadTemplates(dir: string | undefined): TemplateSet {
  if (dir === undefined) return bundledTemplates()
  if (!existsSync(dir)) throw new NotFoundError(`templates directory ${dir}: not found`, {subject: dir, suggestions: ['Pass an existing directory to --templates, or copy templates/ from canary to start from.']})
  if (!statSync(dir).isDirectory()) throw new ConfigError(`templates directory ${dir}: not a directory`, [], {subject: dir, suggestions: ['--templates takes a directory of <name>.yaml files.']})
  const known = Object.keys(TEMPLATE_PLACEHOLDERS)
  const problems = readdirSync(dir)
    .filter((file) => file.endsWith('.yaml') && !known.includes(file.slice(0, -'.yaml'.length)))
    .sort()
    .map((file) => {
      const guess = didYouMean(file.slice(0, -'.yaml'.length), known)
      return {location: {file: join(dir, file)}, path: '', message: `no template is called ${file}: expected one of ${known.map((name) => `${name}.yaml`).join(', ')}`, ...(guess === undefined ? {} : {suggestion: `did you mean ${guess}.yaml?`})}
    })
  if (problems.length > 0) throw new ConfigError(`templates directory ${dir}: ${problems.length} unknown template file${problems.length === 1 ? '' : 's'}`, problems, {subject: dir})
  return readTemplates(BUNDLED_TEMPLATES_DIR, dir)
}

function readTemplates(bundledDir: string, overrideDir: string | undefined): TemplateSet {
  const entries = (Object.keys(TEMPLATE_PLACEHOLDERS) as TemplateName[]).map((name) => {
    const override = overrideDir === undefined ? undefined : join(overrideDir, `${name}.yaml`)
    const file = override !== undefined && existsSync(override) ? override : join(bundledDir, `${name}.yaml`)
    return [name, parseTemplate(readFileSync(file, 'utf8'), file, name, TEMPLATE_PLACEHOLDERS[name], file === override)] as const
  })
  return Object.fromEntries(entries) as unknown as TemplateSet
}
