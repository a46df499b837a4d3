import {mkdtempSync, writeFileSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {parse, parseAllDocuments} from 'yaml'
import {describe, expect, it} from 'vitest'

import {ConfigError, ConflictError, InternalError, UsageError} from '../../src/errors.js'
import {parseProxyConfig} from '../../src/proxy/config.js'
import {weights} from '../../src/rollout/core/weights.js'
import {buildProxyConfig} from '../../src/routers/proxy/objects.js'
import {assertNoCollision, buildReleaseObjects, renderRelease, toYaml} from '../../src/render/render-release.js'
import {bundledTemplates} from '../../src/render/template-set.js'
import {formatPercent} from '../../src/routers/traefik-v1/objects.js'
import {objectProblems} from '../../src/render/validate-objects.js'
import {loadRelease, parseRelease} from '../../src/release/load-release.js'
import type {KubeObject} from '../../src/render/types.js'

const EXAMPLE = join(import.meta.dirname, '../../examples/my-app.yaml')
const SPECS = join(import.meta.dirname, '../fixtures/render/specs')
const exampleText = readFileSync(EXAMPLE, 'utf8')

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'canary-render-'))
}

describe('values cannot break or inject YAML', () => {
  const hostile = 'a: b\n- injected: true\n"quoted" \'single\' # not a comment\n---\nkind: Secret'
  const loaded = parseRelease(exampleText.replace('env: { LOG_LEVEL: info }', `env: { LOG_LEVEL: info, HOSTILE: ${JSON.stringify(hostile)} }`), 'spec.yaml')

  it('keeps a value with colons, quotes, newlines and a document marker one string', async () => {
    const {objects} = await renderRelease(loaded, {image: 'v2'})
    const text = toYaml(objects)
    const documents = parseAllDocuments(text).map((d) => d.toJS() as KubeObject)
    expect(documents.map((d) => d.kind)).toEqual(objects.map((o) => o.kind))
    const env = (documents[0] as unknown as {spec: {template: {spec: {containers: Array<{env: Array<{name: string; value: string}>}>}}}}).spec.template.spec.containers[0]!.env
    expect(env.find((e) => e.name === 'HOSTILE')?.value).toBe(hostile)
    expect(documents.some((d) => d.kind === 'Secret')).toBe(false)
  })

  it('keeps a hostile header value a single annotation value', async () => {
    const value = 'x"\n  nginx.ingress.kubernetes.io/server-snippet: "evil'
    const spec = parseRelease(exampleText.replace('value: always', `value: ${JSON.stringify(value)}`), 'spec.yaml')
    const {objects} = await renderRelease(spec, {image: 'v2'})
    const canary = parseAllDocuments(toYaml(objects)).map((d) => d.toJS() as KubeObject).find((o) => o.metadata.name === 'my-app-canary' && o.kind === 'Ingress')!
    expect(canary.metadata.annotations?.['nginx.ingress.kubernetes.io/canary-by-header-value']).toBe(value)
    expect(canary.metadata.annotations?.['nginx.ingress.kubernetes.io/server-snippet']).toBeUndefined()
  })
})

describe('templates', () => {
  it('lets --templates DIR override one template by name', async () => {
    const dir = tempDir()
    const bundled = readFileSync(join(import.meta.dirname, '../../templates/service.yaml'), 'utf8')
    writeFileSync(join(dir, 'service.yaml'), bundled.replace('  labels: "{{labels}}"', '  labels: "{{labels}}"\n  annotations:\n    team: "payments-{{release}}"'))
    const loaded = await loadRelease(EXAMPLE)
    const {objects} = await renderRelease(loaded, {templatesDir: dir, image: 'v2'})
    const services = objects.filter((o) => o.kind === 'Service')
    expect(services.map((s) => s.metadata.annotations)).toEqual([{team: 'payments-my-app'}, {team: 'payments-my-app'}])
    expect(objects.find((o) => o.kind === 'Deployment')?.metadata.annotations).toBeUndefined()
  })

  it('refuses an unknown placeholder with did-you-mean, naming the file', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'service.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: "{{nmae}}"\n')
    const error = await renderRelease(await loadRelease(EXAMPLE), {templatesDir: dir}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems[0]).toMatchObject({location: {file: join(dir, 'service.yaml')}, message: expect.stringMatching(/unknown placeholder \{\{nmae\}\}/), suggestion: 'did you mean {{name}}?'})
  })

  it('refuses a file that matches no template', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'deploymnet.yaml'), 'kind: Deployment\n')
    const error = await renderRelease(await loadRelease(EXAMPLE), {templatesDir: dir}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems[0]?.suggestion).toBe('did you mean deployment.yaml?')
  })

  it('reports a user template that renders an invalid object as a config error naming object and field', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'service.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: "{{name}}"\n  namespace: "{{namespace}}"\nspec:\n  ports: "{{port}}"\n')
    const error = await renderRelease(await loadRelease(EXAMPLE), {templatesDir: dir}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toMatch(/^Service shop\/my-app: rendered object is invalid: spec\.ports: must be array/)
  })
})

describe('validation of rendered objects', () => {
  it('names the object and the field of a schema violation', async () => {
    const broken = {apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', namespace: 'shop'}, spec: {replicas: 'two', selector: {matchLabels: {app: 'web'}}, template: {spec: {containers: [{name: 'app'}]}}}}
    expect(await objectProblems([broken])).toContainEqual({object: 'Deployment shop/web', field: 'spec.replicas', message: 'must be integer'})
  })

  it('checks names against DNS-1123, which the schemas do not', async () => {
    const object = {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'Web_App!', namespace: 'shop'}}
    expect(await objectProblems([object])).toEqual([{object: 'ConfigMap shop/Web_App!', field: 'metadata.name', message: expect.stringMatching(/lower-case/)}])
  })

  it('checks the Service names routing objects point at', async () => {
    const ingress = {apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: {name: 'web', namespace: 'shop'}, spec: {rules: [{host: 'a.example.com', http: {paths: [{path: '/', pathType: 'Prefix', backend: {service: {name: 'Bad_Name', port: {number: 80}}}}]}}]}}
    expect((await objectProblems([ingress])).map((p) => p.field)).toEqual(['spec.rules.0.http.paths.0.backend.service.name'])
  })

  it('passes every object of every router fixture', async () => {
    for (const file of ['nginx', 'traefik', 'traefik-v1', 'traefik-file', 'gateway-api', 'proxy']) {
      const loaded = await loadRelease(join(SPECS, `${file}.yaml`))
      const objects = buildReleaseObjects(loaded.release, {stableImage: 'ghcr.io/acme/app:v1', canaryImage: 'ghcr.io/acme/app:v2', weights: weights(1, loaded.release.totalWeight)}, loaded.release.ingress!.router)
      expect(await objectProblems(objects)).toEqual([])
    }
  })

  it('turns an invalid bundled output into an internal error (exit 1)', async () => {
    const loaded = await loadRelease(EXAMPLE)
    const broken = {...loaded, release: {...loaded.release, replicas: 1.5}}
    const error = await renderRelease(broken, {}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InternalError)
    expect((error as InternalError).message).toMatch(/^Deployment shop\/my-app: rendered object is invalid: spec\.replicas: must be integer/)
  })
})

describe('render state and determinism', () => {
  it('renders the same bytes for the same input', async () => {
    const loaded = await loadRelease(EXAMPLE)
    const first = toYaml((await renderRelease(loaded, {image: 'v2', step: 3})).objects)
    const again = toYaml((await renderRelease(await loadRelease(EXAMPLE), {image: 'v2', step: 3})).objects)
    expect(again).toBe(first)
  })

  it('renders stable only without --image, and the canary at weight 0 with it', async () => {
    const loaded = await loadRelease(EXAMPLE)
    expect((await renderRelease(loaded, {})).objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Deployment/my-app', 'Service/my-app', 'Ingress/my-app'])
    const withCanary = await renderRelease(loaded, {image: 'v2'})
    expect(withCanary.objects.find((o) => o.metadata.name === 'my-app-canary' && o.kind === 'Ingress')?.metadata.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBe('0')
  })

  it('refuses bad flag combinations as usage errors', async () => {
    const loaded = await loadRelease(EXAMPLE)
    await expect(renderRelease(loaded, {weight: 10})).rejects.toBeInstanceOf(UsageError)
    await expect(renderRelease(loaded, {image: 'v2', weight: 101})).rejects.toThrow(/--weight 101 is out of range/)
    await expect(renderRelease(loaded, {image: 'v2', step: 6})).rejects.toThrow(/the plan has steps 1 to 5/)
    await expect(renderRelease(loaded, {image: 'Not A Tag'})).rejects.toBeInstanceOf(UsageError)
  })

  it('refuses a router that cannot do what the spec asks, naming router and field', async () => {
    const error = await renderRelease(await loadRelease(EXAMPLE), {router: 'traefik-v1'}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems.map((p) => p.path)).toEqual(['spec.match.header', 'spec.match.cookie'])
  })

  it('writes Traefik 1.x percentages with at most 3 decimals', () => {
    expect([formatPercent(weights(20)), formatPercent(weights(1, 1000)), formatPercent(weights(125, 1000)), formatPercent(weights(1, 3))]).toEqual(['20%', '0.1%', '12.5%', '33.333%'])
  })
})

describe('collision check (ingress-nginx honours one canary Ingress per host and path)', () => {
  const canaryIngress = (name: string, host: string, path: string): KubeObject => ({
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
    metadata: {name, namespace: 'other', annotations: {'nginx.ingress.kubernetes.io/canary': 'true'}},
    spec: {rules: [{host, http: {paths: [{path, pathType: 'Prefix', backend: {service: {name: 'x', port: {number: 80}}}}]}}]},
  })

  it('refuses a second canary Ingress for the same host and path', async () => {
    const dir = tempDir()
    const existing = join(dir, 'existing.yaml')
    writeFileSync(existing, `apiVersion: v1\nkind: List\nitems:\n${JSON.stringify([canaryIngress('old-canary', 'my-app.example.com', '/')])}\n`.replace('items:\n[', 'items: ['))
    const error = await renderRelease(await loadRelease(EXAMPLE), {image: 'v2', existingFile: existing}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConflictError)
    expect((error as ConflictError).message).toBe('Ingress shop/my-app-canary: conflicts with Ingress other/old-canary: both are canary Ingresses for my-app.example.com/, and ingress-nginx honours only one')
  })

  it('accepts our own canary Ingress and other hosts or paths', async () => {
    const {objects} = await renderRelease(await loadRelease(EXAMPLE), {image: 'v2'})
    const ours = objects.find((o) => o.metadata.name === 'my-app-canary' && o.kind === 'Ingress')!
    expect(() => assertNoCollision(objects, [ours, canaryIngress('a', 'other.example.com', '/'), canaryIngress('b', 'my-app.example.com', '/admin')], 'nginx')).not.toThrow()
  })

  it('only applies to ingress-nginx', async () => {
    const {objects} = await renderRelease(await loadRelease(EXAMPLE), {image: 'v2'})
    expect(() => assertNoCollision(objects, [canaryIngress('old', 'my-app.example.com', '/')], 'traefik')).not.toThrow()
  })
})

describe('the bundled proxy config', () => {
  it('is accepted by the proxy\'s own parser, with every override', async () => {
    const {release} = await loadRelease(join(SPECS, 'proxy.yaml'))
    const config = buildProxyConfig(release, {stableServers: ['http://127.0.0.1:9001'], canaryServers: ['http://127.0.0.1:9002'], weights: weights(20), adminToken: '${CANARY_ADMIN_TOKEN}'})
    const parsed = parseProxyConfig(toYaml([config as KubeObject]), 'proxy.yaml', {CANARY_ADMIN_TOKEN: 'secret'})
    const service = parsed.services.cheddar!
    expect(service.versions.map((v) => [v.name, v.weight])).toEqual([['stable', 80], ['canary', 20]])
    expect(service).toMatchObject({canary: 'canary', header: {name: 'X-Canary', value: 'please'}, cookie: {name: 'canary'}, sticky: {cookie: 'cheddar_version'}, mirror: {version: 'canary', percent: 10}})
    expect(parsed.admin.token).toBe('secret')
  })

  it('is accepted inside the rendered ConfigMap too', async () => {
    const loaded = await loadRelease(join(SPECS, 'proxy.yaml'))
    const {objects} = await renderRelease(loaded, {image: 'v2', step: 1})
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as KubeObject & {data: Record<string, string>}
    const parsed = parseProxyConfig(configMap.data['proxy.yaml']!, 'proxy.yaml', {CANARY_ADMIN_TOKEN: 'from-the-secret'})
    expect(parsed.routes[0]).toMatchObject({host: 'cheeses.local', pathPrefix: '/cheddar', service: 'cheddar'})
    expect(parse(configMap.data['proxy.yaml']!).listen).toBe('0.0.0.0:8080')
  })

  it('passes spec strings through the proxy\'s ${VAR} expansion unchanged', async () => {
    const loaded = await loadRelease(join(SPECS, 'proxy.yaml'))
    const release = {...loaded.release, match: {header: {kind: 'pattern' as const, name: 'X-Canary', pattern: '^v2$|${HOME}'}}}
    const config = buildProxyConfig(release, {stableServers: ['http://127.0.0.1:9001'], canaryServers: ['http://127.0.0.1:9002'], weights: weights(20)})
    const parsed = parseProxyConfig(toYaml([config as KubeObject]), 'proxy.yaml', {HOME: '/root'})
    expect(parsed.services.cheddar?.header).toEqual({name: 'X-Canary', pattern: '^v2$|${HOME}'})
  })

  it('has no canary version, overrides or mirror without canary servers', async () => {
    const {release} = await loadRelease(join(SPECS, 'proxy.yaml'))
    const config = buildProxyConfig(release, {stableServers: ['http://127.0.0.1:9001'], weights: weights(0)})
    const parsed = parseProxyConfig(toYaml([config as KubeObject]), 'proxy.yaml', {})
    expect(parsed.services.cheddar).toMatchObject({versions: [{name: 'stable', weight: 100}]})
    expect(parsed.services.cheddar?.mirror).toBeUndefined()
    expect(bundledTemplates().deployment.overridden).toBe(false)
  })
})

describe('the in-cluster proxy is wired to follow its ConfigMap and expose /metrics', () => {
  type Container = {args: string[]; env?: Array<{name: string; value?: string; valueFrom?: {secretKeyRef?: {name: string; key: string}}}>; readinessProbe?: unknown; livenessProbe?: unknown}
  const rendered = async () => {
    const {objects} = await renderRelease(await loadRelease(join(SPECS, 'proxy.yaml')), {image: 'v2', step: 1})
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'cheddar-proxy') as KubeObject & {spec: {template: {spec: {serviceAccountName?: string; containers: Container[]}}}}
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as KubeObject & {data: Record<string, string>}
    return {objects, pod: deployment.spec.template.spec, container: deployment.spec.template.spec.containers[0]!, configText: configMap.data['proxy.yaml']!}
  }

  it('runs the proxy with --follow-config-map <namespace>/<its ConfigMap>', async () => {
    const {container} = await rendered()
    expect(container.args).toEqual(['proxy', '--config', '/etc/canary/proxy.yaml', '--follow-config-map', 'cheeses/cheddar-proxy-config'])
  })

  it('runs as the ServiceAccount <release>-proxy, which `render --rbac` grants that ConfigMap', async () => {
    const {pod, objects} = await rendered()
    expect(pod.serviceAccountName).toBe('cheddar-proxy')
    // RBAC objects are an administrator's to apply once, never part of a release's render.
    expect(objects.filter((o) => ['ServiceAccount', 'Role', 'RoleBinding', 'Secret'].includes(o.kind))).toEqual([])
  })

  it('listens for admin on the pod IP with a token from a Secret, and serves /metrics without it', async () => {
    const {container, configText} = await rendered()
    const admin = (parse(configText) as {admin: Record<string, unknown>}).admin
    expect(admin).toEqual({listen: '0.0.0.0:9901', token: '${CANARY_ADMIN_TOKEN}', metricsAuth: false})
    expect(container.env).toEqual([{name: 'CANARY_ADMIN_TOKEN', valueFrom: {secretKeyRef: {name: 'cheddar-proxy-admin', key: 'token'}}}])
    // Without the Secret's value in its environment, the proxy refuses the config (no open admin API).
    expect(() => parseProxyConfig(configText, 'proxy.yaml', {})).toThrow(ConfigError)
    expect(parseProxyConfig(configText, 'proxy.yaml', {CANARY_ADMIN_TOKEN: 't0ken'}).admin).toMatchObject({token: 't0ken', metricsAuth: false})
  })

  it('probes /healthz on the admin port (no token needed there)', async () => {
    const {container} = await rendered()
    const probe = {httpGet: {path: '/healthz', port: 'admin'}}
    expect(container.readinessProbe).toEqual(probe)
    expect(container.livenessProbe).toEqual(probe)
  })

  it('renders the same bytes twice (the token is never in the output)', async () => {
    const first = toYaml((await rendered()).objects)
    expect(toYaml((await rendered()).objects)).toBe(first)
    expect(first).not.toMatch(/kind: Secret/)
  })
})
