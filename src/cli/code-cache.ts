/**
 * Loads a CommonJS file through V8 with a code cache, the way Node 22's module compile cache
 * does (Node 20 has none): the first run compiles the source and, at exit, saves the compiled
 * functions; later runs skip parsing and most lazy compilation. For the CLI bundle this halves
 * the time spent loading @oclif/core and our code on every `canary` invocation (scripts/build.js).
 *
 * The cache is only an optimisation: a missing, unreadable, stale or rejected cache file means a
 * normal compile, and failing to write one is ignored. File names carry the bundle's size and
 * mtime (V8's own check only compares the source length) and the cache is per command, so
 * `canary step` keeps the functions `step` compiled; a command's first run borrows another
 * command's file meanwhile.
 */
import {mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import Module from 'node:module'
import {basename, dirname, join} from 'node:path'
import {Script} from 'node:vm'

/** What happened to the cache, for tests and `CANARY_CODE_CACHE_DEBUG`. */
export type CodeCacheOutcome = 'used' | 'borrowed' | 'rejected' | 'missing' | 'disabled'

interface ModuleInternals {
  wrap(source: string): string
  _cache: Record<string, Module>
}

/**
 * The cache file for `file` and `key`, or undefined when caching is off: one directory per
 * bundle path and Node version, one file per build (size and mtime) and key.
 */
export function codeCachePath(file: string, key: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CANARY_CODE_CACHE === '0') return undefined
  const base = env.CANARY_CODE_CACHE_DIR ?? (env.XDG_CACHE_HOME ? join(env.XDG_CACHE_HOME, 'canary') : env.HOME ? join(env.HOME, '.cache', 'canary') : undefined)
  if (base === undefined) return undefined
  const {size, mtimeMs} = statSync(file)
  const safeKey = /^[a-z][a-z0-9-]{0,31}$/.test(key) ? key : 'other'
  return join(base, 'code-cache', `${process.version}-${process.arch}-${fnv1a(file)}`, `${size}-${Math.trunc(mtimeMs)}-${safeKey}.bin`)
}

/** 32-bit FNV-1a as hex: a short, stable directory name for a path (node:crypto costs more to load). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash.toString(16).padStart(8, '0')
}

/**
 * Requires `file` (a CommonJS module) with a V8 code cache at `cachePath`; the module lands in
 * Node's require cache, so a later `require(file)` gets the same instance.
 */
export function requireWithCodeCache(file: string, cachePath: string | undefined): {exports: unknown; outcome: CodeCacheOutcome} {
  const internals = Module as unknown as ModuleInternals
  const source = readFileSync(file, 'utf8')
  const cached = cachePath === undefined ? undefined : readCodeCache(cachePath)
  const cachedData = cached?.data
  const script = new Script(internals.wrap(source), {
    // No importModuleDynamically: in Node 20 it is experimental and warns on use, so the file
    // must not contain import() (the CLI bundle is built with require() instead: scripts/build.js).
    filename: file,
    ...(cachedData === undefined ? {} : {cachedData}),
  })
  const outcome: CodeCacheOutcome = cachePath === undefined ? 'disabled' : cached === undefined ? 'missing' : script.cachedDataRejected === true ? 'rejected' : cached.own ? 'used' : 'borrowed'
  const mod = new Module(file)
  mod.filename = file
  mod.paths = (Module as unknown as {_nodeModulePaths(dir: string): string[]})._nodeModulePaths(dirname(file))
  internals._cache[file] = mod
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void
  try {
    wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, dirname(file))
  } catch (error) {
    delete internals._cache[file]
    throw error
  }
  mod.loaded = true
  if (cachePath !== undefined && outcome !== 'used') {
    // At exit the functions this command ran are compiled too, so they go into the cache.
    process.once('exit', () => writeCodeCache(script, cachePath))
  }
  return {exports: mod.exports, outcome}
}

/** `<size>-<mtime>-` of a cache file name: which build of the bundle it belongs to. */
function buildPrefix(cachePath: string): string {
  return /^\d+-\d+-/.exec(basename(cachePath))?.[0] ?? basename(cachePath)
}

/**
 * This command's cache file or, the first time a command runs, another command's file of the same
 * build: most of what it holds (oclif, shared modules) is what this command runs too.
 */
function readCodeCache(cachePath: string): {data: Buffer; own: boolean} | undefined {
  try {
    return {data: readFileSync(cachePath), own: true}
  } catch {
    // Not written yet for this command.
  }
  try {
    const dir = dirname(cachePath)
    const sibling = readdirSync(dir).find((name) => name.endsWith('.bin') && name.startsWith(buildPrefix(cachePath)))
    return sibling === undefined ? undefined : {data: readFileSync(join(dir, sibling)), own: false}
  } catch {
    return undefined
  }
}

function writeCodeCache(script: Script, cachePath: string): void {
  const dir = dirname(cachePath)
  const build = buildPrefix(cachePath)
  try {
    mkdirSync(dir, {recursive: true, mode: 0o700})
    // Files of earlier builds of this bundle are never read again.
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.bin') && !name.startsWith(build)) rmSync(join(dir, name), {force: true})
    }
    const temp = `${cachePath}.${process.pid}.tmp`
    writeFileSync(temp, script.createCachedData(), {mode: 0o600})
    renameSync(temp, cachePath)
  } catch {
    // A read-only or full cache directory only costs the next run a compile.
  }
}
