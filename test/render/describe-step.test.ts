import {describe, expect, it} from 'vitest'

import {describeStep} from '../../src/render/describe-step.js'

// One function words a step for validate/render (`spec`) and for status (`status`); both wordings are public output.
describe('describeStep', () => {
  const cases = [
    {step: {kind: 'setWeight', weight: 20} as const, spec: 'setWeight 20', status: 'setWeight 20/100'},
    {step: {kind: 'setWeight', weight: 0} as const, spec: 'setWeight 0', status: 'setWeight 0/100'},
    {step: {kind: 'pause', durationMs: 120_000} as const, spec: 'pause 2m', status: 'pause 120 s'},
    {step: {kind: 'pause', durationMs: 1500} as const, spec: 'pause 1s500ms', status: 'pause 2 s'},
    {step: {kind: 'pause'} as const, spec: 'pause (until canary step / canary promote)', status: 'pause until canary step or canary promote'},
  ]
  for (const {step, spec, status} of cases) {
    it(`${JSON.stringify(step)} reads "${spec}" in a spec and "${status}" in status`, () => {
      expect(describeStep(step)).toBe(spec)
      expect(describeStep(step, {kind: 'status', totalWeight: 100})).toBe(status)
    })
  }

  it('names the total weight in status and says when every step is done', () => {
    expect(describeStep({kind: 'setWeight', weight: 3}, {kind: 'status', totalWeight: 400})).toBe('setWeight 3/400')
    expect(describeStep(undefined, {kind: 'status', totalWeight: 100})).toBe('all steps done')
  })
})
