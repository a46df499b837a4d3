// `npm run build`: bundles src/ into dist/ with esbuild, then writes the oclif manifest.
//
// Why bundles and not tsc's one-file-per-module output: every `canary` invocation pays for
// loading the CLI before it does anything, and CI calls `canary step`/`status` many times.
// Resolving and compiling ~160 files of @oclif/core and its dependencies took ~120 ms of a
// ~350 ms `canary step`. Now:
//  - dist/cli/canary.cjs: the whole CLI (oclif + every command) in one CommonJS file, so that
//    bin/run.js can load it through a V8 code cache (src/cli/code-cache.ts); commands are
//    initialised lazily (src/cli/commands.ts);
//  - dist/cli/boot.cjs: the small loader bin/run.js calls;
//  - dist/{local/daemon-main,proxy/cluster-worker,demo/app}.js: the programs the CLI starts by
//    path (release daemon, proxy cluster workers, demo app), as ES modules sharing dist/chunks/.
// Type checking stays with tsc (`npm run typecheck`).
//
// Layout rule: every output file sits exactly two levels below the package root, as the sources
// do (src/local/…), so `../../templates/` and `../local/daemon-main.js` resolve the same from
// src/ (tests) and from dist/.
import {spawnSync} from 'node:child_process'
import {readFileSync, rmSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'

import {build} from 'esbuild'

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  minify: process.env.CANARY_BUILD_MINIFY !== '0',
  // Error classes and commands are told apart by name in places (and names read better in traces).
  keepNames: true,
  // Large or lazily used packages stay ordinary imports: the Kubernetes client and schemas load
  // only on the cluster path, undici and prom-client only in proxy processes; typescript/ts-node
  // are optional development hooks of oclif that a built CLI never loads.
  // zod loads only when a spec is parsed (a cache miss, validate, render, init). yaml is bundled:
  // every cluster command parses the kubeconfig and the routing templates with it, and inside the
  // bundle it is compiled once into the V8 code cache; commands that never call it never run it.
  external: ['@kubernetes/client-node', 'kubernetes-models', '@kubernetes-models/*', 'undici', 'prom-client', 'zod', 'typescript', 'ts-node'],
  plugins: [{name: 'oclif-command-order', setup: sortCommandsWithoutIcu}, {name: 'bundle-zod-mini', setup: bundleZodMini}],
}

/**
 * `zod` stays external (the spec parser loads it only on a cache miss), but `zod/mini` is bundled:
 * every lifecycle command validates its state file with it (src/rollout/state-schema.ts), and its
 * ES-module build tree-shakes to a few KB where loading the package costs ~60 ms per command.
 * An external `zod` would otherwise take `zod/mini` with it (esbuild treats subpaths as external too).
 */
function bundleZodMini(build) {
  const require = createRequire(import.meta.url)
  build.onResolve({filter: /^zod\/mini$/}, () => ({path: join(dirname(require.resolve('zod/package.json')), 'mini', 'index.js')}))
}

/**
 * oclif sorts the manifest's commands with String#localeCompare on every start; the first
 * localeCompare of a process loads ICU's collator, ~13 ms of a `canary step`. Command ids are
 * ASCII, so a code-unit comparison gives the same order. The build fails if oclif changes this
 * line, so an upgrade gets looked at instead of silently losing the fix.
 */
function sortCommandsWithoutIcu(build) {
  const slow = '.sort((a, b) => a.id.localeCompare(b.id))'
  build.onLoad({filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/}, (args) => {
    const source = readFileSync(args.path, 'utf8')
    if (!source.includes(slow)) throw new Error(`${args.path}: expected ${slow}; check scripts/build.js against this @oclif/core version`)
    return {contents: source.replace(slow, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js'}
  })
}

rmSync('dist', {recursive: true, force: true})
rmSync('oclif.manifest.json', {force: true})

await Promise.all([
  build({
    ...common,
    entryPoints: {'cli/canary': 'src/cli/commands.ts', 'cli/boot': 'src/cli/boot.ts'},
    outdir: 'dist',
    outExtension: {'.js': '.cjs'},
    format: 'cjs',
    // bin/run.js runs this file as a vm.Script (for the code cache), where import() would need an
    // experimental flag; Node >= 20.19 can require() the ES-module-only packages instead.
    supported: {'dynamic-import': false},
    // import.meta.url has no CommonJS equivalent of its own; the file's URL is what our code means by it.
    define: {'import.meta.url': '__canaryImportMetaUrl'},
    banner: {js: "const __canaryImportMetaUrl = require('node:url').pathToFileURL(__filename).href;"},
  }),
  build({
    ...common,
    entryPoints: {'local/daemon-main': 'src/local/daemon-main.ts', 'proxy/cluster-worker': 'src/proxy/cluster-worker.ts', 'demo/app': 'src/demo/app.ts'},
    outdir: 'dist',
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
    format: 'esm',
    // @oclif/core's dependencies and others are CommonJS; inside an ES module their require()
    // calls of Node built-ins need a real require.
    banner: {js: "import {createRequire as __canaryCreateRequire} from 'node:module'; const require = __canaryCreateRequire(import.meta.url);"},
  }),
])

const manifest = spawnSync(process.execPath, ['scripts/manifest.js'], {stdio: 'inherit'})
process.exit(manifest.status ?? 1)
