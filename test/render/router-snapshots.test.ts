import {readdirSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {renderAllSteps, renderRelease, toYaml} from '../../src/render/render-release.js'
import {loadRelease} from '../../src/release/load-release.js'

const SPECS = join(import.meta.dirname, '../fixtures/render/specs')
const SNAPSHOTS = join(import.meta.dirname, '../fixtures/render/snapshots')

// Snapshot files were generated once and reviewed by eye against the router docs (anchors.md §4);
// a change in output shows up as a diff of these files.
describe('each router renders the objects its data plane expects', () => {
  for (const file of readdirSync(SPECS).filter((f) => f.endsWith('.yaml')).sort()) {
    const name = file.replace(/\.yaml$/, '')
    it(`${name}: stable only, then a canary at the first step`, async () => {
      const loaded = await loadRelease(join(SPECS, file))
      const stableOnly = await renderRelease(loaded, {})
      const firstStep = await renderRelease(loaded, {image: 'v2', step: 1})
      await expect(`# stable only\n${toYaml(stableOnly.objects)}# --image v2 --step 1\n${toYaml(firstStep.objects)}`).toMatchFileSnapshot(join(SNAPSHOTS, `${name}.yaml`))
    })
  }

  it('renders --all-steps as the weight in force after each step, with only the routing object changing', async () => {
    const loaded = await loadRelease(join(SPECS, 'nginx.yaml'))
    const steps = await renderAllSteps(loaded, {image: 'v2'})
    expect(steps.map((s) => `${s.step}:${s.description}:${s.state.weights.canary}/${s.state.weights.total}`)).toEqual([
      '1:setWeight 1:1/1000', '2:setWeight 10:10/1000', '3:pause 10m:10/1000', '4:setWeight 500:500/1000', '5:setWeight 1000:1000/1000',
    ])
    expect(steps[2]!.changes).toEqual([])
    expect(steps[1]!.changes.map((c) => c.object)).toEqual(['Ingress shop/shop-api-canary'])
    expect(steps[1]!.changes[0]!.diff).toContain('-     nginx.ingress.kubernetes.io/canary-weight: "1"')
    expect(steps[1]!.changes[0]!.diff).toContain('+     nginx.ingress.kubernetes.io/canary-weight: "10"')
  })
})
