/**
 * Entry of the CLI bundle (dist/cli/canary.cjs, scripts/build.js): oclif's runtime and the
 * commands, found by oclif's "explicit" command discovery (package.json `oclif.commands`).
 *
 * Each command is a getter around `require`, which esbuild turns into a lazy, synchronous
 * initialisation of that command's modules inside the bundle: `canary step` does not evaluate
 * the code of `render` or `proxy`. oclif reads `COMMANDS[id]` synchronously, so `import()` would
 * not do. The command list itself comes from oclif.manifest.json.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type AbortCommand from '../commands/abort.js'
import type DemoCommand from '../commands/demo.js'
import type DownCommand from '../commands/down.js'
import type InitCommand from '../commands/init.js'
import type PromoteCommand from '../commands/promote.js'
import type ProxyCommand from '../commands/proxy.js'
import type RenderCommand from '../commands/render.js'
import type RunCommand from '../commands/run.js'
import type StartCommand from '../commands/start.js'
import type StatusCommand from '../commands/status.js'
import type StepCommand from '../commands/step.js'
import type ValidateCommand from '../commands/validate.js'

export {execute} from '@oclif/core'

export const COMMANDS = {
  get abort(): typeof AbortCommand {
    return (require('../commands/abort.js') as {default: typeof AbortCommand}).default
  },
  get demo(): typeof DemoCommand {
    return (require('../commands/demo.js') as {default: typeof DemoCommand}).default
  },
  get down(): typeof DownCommand {
    return (require('../commands/down.js') as {default: typeof DownCommand}).default
  },
  get init(): typeof InitCommand {
    return (require('../commands/init.js') as {default: typeof InitCommand}).default
  },
  get promote(): typeof PromoteCommand {
    return (require('../commands/promote.js') as {default: typeof PromoteCommand}).default
  },
  get proxy(): typeof ProxyCommand {
    return (require('../commands/proxy.js') as {default: typeof ProxyCommand}).default
  },
  get render(): typeof RenderCommand {
    return (require('../commands/render.js') as {default: typeof RenderCommand}).default
  },
  get run(): typeof RunCommand {
    return (require('../commands/run.js') as {default: typeof RunCommand}).default
  },
  get start(): typeof StartCommand {
    return (require('../commands/start.js') as {default: typeof StartCommand}).default
  },
  get status(): typeof StatusCommand {
    return (require('../commands/status.js') as {default: typeof StatusCommand}).default
  },
  get step(): typeof StepCommand {
    return (require('../commands/step.js') as {default: typeof StepCommand}).default
  },
  get validate(): typeof ValidateCommand {
    return (require('../commands/validate.js') as {default: typeof ValidateCommand}).default
  },
}
