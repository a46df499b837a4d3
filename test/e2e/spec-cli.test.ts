// End-to-end: the built CLI (`npm run build` first; `npm test` does it) as a child process,
// checking exit codes, stdout/stderr and --json for init, validate and render.
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it, vi} from 'vitest'

import Init from '../../src/commands/init.js'
import Render from '../../src/commands/render.js'
import Validate from '../../src/commands/validate.js'
import {canary as runCanary, type CliResult} from '../helpers/lifecycle.js'

// Each run starts Node and oclif (~0.3 s idle, several seconds on a busy machine).
vi.setConfig({testTimeout: 120_000})

const ROOT = join(import.meta.dirname, '../..')
const EXAMPLE = join(ROOT, 'examples/my-app.yaml')

/** The built CLI as a child process (shared helper), run from the repository unless told otherwise. */
function canary(args: readonly string[], cwd: string = ROOT): Promise<CliResult> {
  return runCanary(args, cwd)
}

/** A scratch directory with the example as examples/my-app.yaml and ./canary.yaml. */
function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'canary-e2e-spec-'))
  mkdirSync(join(dir, 'examples'))
  copyFileSync(EXAMPLE, join(dir, 'examples/my-app.yaml'))
  copyFileSync(EXAMPLE, join(dir, 'canary.yaml'))
  return dir
}

describe('canary validate (built CLI)', () => {
  it('exits 0 for the example', async () => {
    const run = await canary(['validate', '-f', EXAMPLE])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('ok: Release shop/my-app, target kubernetes, router nginx')
  })

  it('exits 3 listing every problem with file:line:col and no stack trace', async () => {
    const dir = workspace()
    writeFileSync(join(dir, 'bad.yaml'), readFileSync(EXAMPLE, 'utf8').replace('replicas: 4', 'replica: 4').replace('router: nginx', 'router: ngnix'))
    const run = await canary(['validate', '-f', 'bad.yaml'], dir)
    expect(run.code).toBe(3)
    expect(run.stderr).toContain('bad.yaml:8:3 spec.replica: unknown field "replica"')
    expect(run.stderr).toContain('(did you mean "nginx"?)')
    expect(run.stderr).not.toMatch(/\n\s+at /)
  })

  it('prints the error as JSON with --json', async () => {
    const dir = workspace()
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: canary.dev/v1alpha1\nkind: Release\nmetadata: {name: x}\nspec: {image: "x", port: 0, steps: [50]}\n')
    const run = await canary(['validate', '-f', 'bad.yaml', '--json'], dir)
    expect(run.code).toBe(3)
    const {error} = JSON.parse(run.stdout) as {error: {code: string; exitCode: number; problems: Array<{path: string; location: {line: number}}>}}
    expect(error).toMatchObject({code: 'E_CONFIG', exitCode: 3})
    expect(error.problems.map((p) => p.path)).toEqual(['spec', 'spec.port', 'spec.steps.0'])
  })

  it('exits 4 for a missing file and 2 for an unknown flag value', async () => {
    expect((await canary(['validate', '-f', '/nonexistent/canary.yaml'])).code).toBe(4)
    expect((await canary(['validate', '-f', EXAMPLE, '--router', 'ngnix'])).code).toBe(2)
  })

  it('exits 3 when another router cannot do what the spec asks', async () => {
    const run = await canary(['validate', '-f', EXAMPLE, '--router', 'traefik-v1', '--json'])
    expect(run.code).toBe(3)
    expect(JSON.parse(run.stdout).error.problems[0].message).toMatch(/^router traefik-v1 cannot do header match/)
  })
})

describe('canary render (built CLI)', () => {
  it('prints the same bytes on every run', async () => {
    const first = await canary(['render', '-f', EXAMPLE, '--image', 'v2', '--step', '3'])
    const second = await canary(['render', '-f', EXAMPLE, '--image', 'v2', '--step', '3'])
    expect(first.code).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(first.stdout).toContain('nginx.ingress.kubernetes.io/canary-weight: "50"')
  })

  it('returns the objects with --json', async () => {
    const run = await canary(['render', '-f', EXAMPLE, '--image', 'v2', '--weight', '30', '--router', 'traefik', '--json'])
    expect(run.code).toBe(0)
    const result = JSON.parse(run.stdout) as {router: string; steps: Array<{weights: {canary: number}; objects: Array<{kind: string}>}>}
    expect(result.router).toBe('traefik')
    expect(result.steps[0]!.weights.canary).toBe(30)
    expect(result.steps[0]!.objects.map((o) => o.kind)).toEqual(['Deployment', 'Service', 'Deployment', 'Service', 'TraefikService', 'IngressRoute'])
  })

  it('exits 2 for bad flags', async () => {
    expect((await canary(['render', '-f', EXAMPLE, '--step', '0'])).code).toBe(2)
    expect((await canary(['render', '-f', EXAMPLE, '--image', 'v2', '--weight', '10', '--step', '1'])).code).toBe(2)
  })

  it('exits 5 when a canary Ingress for the same host and path exists', async () => {
    const dir = workspace()
    writeFileSync(join(dir, 'existing.yaml'), [
      'apiVersion: networking.k8s.io/v1',
      'kind: Ingress',
      'metadata: {name: legacy-canary, namespace: shop, annotations: {nginx.ingress.kubernetes.io/canary: "true"}}',
      'spec: {rules: [{host: my-app.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: legacy, port: {number: 80}}}}]}}]}',
      '',
    ].join('\n'))
    const run = await canary(['render', '--image', 'v2', '--existing', 'existing.yaml', '--json'], dir)
    expect(run.code).toBe(5)
    expect(JSON.parse(run.stdout).error).toMatchObject({code: 'E_CONFLICT', exitCode: 5, subject: 'Ingress shop/legacy-canary'})
  })

  it('writes one file per object with -o', async () => {
    const dir = workspace()
    const run = await canary(['render', '--image', 'v2', '-o', 'out'], dir)
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('wrote 6 files to out\n')
    expect(readFileSync(join(dir, 'out/06-ingress-my-app-canary.yaml'), 'utf8')).toContain('canary-weight: "0"')
  })
})

describe('canary init (built CLI)', () => {
  // Every router's starter spec is validated and rendered in-process (test/release/starter.test.ts).
  it('writes a starter spec that validates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canary-e2e-init-'))
    expect((await canary(['init', 'shop-api', '--router', 'gateway-api'], dir)).code).toBe(0)
    expect((await canary(['validate'], dir)).code).toBe(0)
  })

  it('refuses to overwrite (exit 5) and to use a bad name (exit 2)', async () => {
    const dir = workspace()
    expect((await canary(['init'], dir)).code).toBe(5)
    expect((await canary(['init', 'My_App', '-f', 'other.yaml'], dir)).code).toBe(2)
  })
})

describe('the examples in --help run', () => {
  for (const command of [Init, Validate, Render]) {
    for (const example of command.examples as Array<{description: string; command: string}>) {
      it(`${example.command} (${example.description})`, async () => {
        const args = example.command.replace('<%= config.bin %> ', '').split(' ')
        const dir = workspace()
        // The workspace already has a canary.yaml, which init refuses to overwrite without --force.
        const run = await canary(args[0] === 'init' ? [...args, '--force'] : args, dir)
        expect(run.stderr).toBe('')
        expect(run.code).toBe(0)
      })
    }
  }
})
