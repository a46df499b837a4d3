import {describe, expect, it} from 'vitest'

import {REPO, canary} from '../helpers/lifecycle.js'

// help texts have examples, and they stay valid commands.
describe('help of the lifecycle commands (built CLI)', () => {
  it.each(['start', 'step', 'promote', 'abort', 'status', 'run', 'down', 'demo'])('canary %s --help shows a summary and examples', async (command) => {
    const result = await canary([command, '--help'], REPO)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/USAGE/)
    expect(result.stdout).toMatch(/EXAMPLES/)
    for (const example of result.stdout.matchAll(/^\s+\$ canary (\S+)/gm)) expect(example[1]).toBe(command)
  }, 30_000)
})
