/**
 * The YAML layer of the release spec and the proxy config, in time linear in the input.
 *
 * yaml's own conveniences are quadratic on large mappings: `uniqueKeys` compares each key with
 * every earlier key of its mapping (1 MB of keys took 27 s), and `toJS()` resolves each alias by
 * scanning every anchor before it. So yaml only tokenizes and composes here (uniqueKeys off), and
 * one pass of ours finds duplicate keys with a Set, resolves aliases through a map of anchors,
 * applies merge keys and builds the plain data, while bounding what a hostile file can cost:
 * size, nesting (checked on yaml's non-recursive CST first, since composing a deeply nested
 * document can exhaust the stack or the heap), and the values aliases expand to.
 *
 * The dialect is YAML 1.2's core schema: `yes`/`on` are strings, no `%YAML 1.1`, only the core
 * tags (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`); merge keys (`<<`) are
 * applied, as Kubernetes tooling does.
 */
import {Composer, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, type CST, type Document} from 'yaml'

type Token = CST.Token

import type {ConfigProblem, SourceLocation} from '../errors.js'
import {CONFIG_LIMITS, formatBytes, preview, type ConfigLimits} from './limits.js'

/** A parsed file: plain data plus where each field is. `problems` empty means `value` is usable. */
export interface ConfigYaml {
  /** Plain data (objects, arrays, strings, numbers, booleans, null); null for an empty file. */
  readonly value: unknown
  /** True when the file holds no document (only comments or whitespace). */
  readonly empty: boolean
  /** Problems of the YAML itself: syntax, limits, duplicate keys, tags, aliases. */
  readonly problems: ConfigProblem[]
  /** The position of a character offset in the text. */
  readonly at: (offset: number | undefined) => SourceLocation
  /**
   * Where a field is: the deepest node of `path` that exists (a missing field points at its
   * parent); `key` asks for the key's position instead of the value's when the field exists.
   */
  readonly locate: (path: readonly PropertyKey[], which?: 'value' | 'key') => SourceLocation
  /** Every field of the document (not those reached through an alias or merge), in file order. */
  readonly fields: () => IterableIterator<FieldPosition>
}

export interface FieldPosition {
  readonly path: readonly string[]
  /** Offset of the key (mapping entries) or item (list items). */
  readonly keyOffset: number | undefined
  /** Offset of the value (the key's when the value is empty). */
  readonly valueOffset: number | undefined
}

export interface ParseConfigYamlOptions {
  readonly limits?: Partial<ConfigLimits>
  /** Rewrites every string scalar (keys included), e.g. to expand `${VAR}`; runs once per node. */
  readonly mapString?: (value: string, offset: number | undefined) => string
}

const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((name) => `tag:yaml.org,2002:${name}`))
const SYNTAX_SUGGESTION = 'check indentation, colons and quotes around this position'
/** Characters YAML 1.2 allows in a stream (§5.1 c-printable); the others are refused, not passed on to headers or child processes. */
const NOT_PRINTABLE = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u

export function parseConfigYaml(source: string, file: string, options: ParseConfigYamlOptions = {}): ConfigYaml {
  const limits: ConfigLimits = {...CONFIG_LIMITS, ...options.limits}
  // A byte order mark is allowed at the start; dropping it keeps columns those of an editor.
  const text = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source
  const lineCounter = new LineCounter()
  const at = (offset: number | undefined): SourceLocation => {
    if (offset === undefined) return {file}
    const {line, col} = lineCounter.linePos(offset)
    return {file, line, column: col}
  }
  const index = new Map<string, FieldPosition>()
  const result = (problems: ConfigProblem[], value: unknown = null, empty = false, root?: number): ConfigYaml => ({
    value,
    empty,
    problems,
    at,
    locate: (path, which = 'value') => {
      for (let length = path.length; length > 0; length--) {
        const entry = index.get(indexKey(path.slice(0, length).map(String)))
        if (entry === undefined) continue
        if (which === 'key' && length === path.length && entry.keyOffset !== undefined) return at(entry.keyOffset)
        return at(entry.valueOffset ?? entry.keyOffset)
      }
      return at(root)
    },
    fields: () => index.values(),
  })
  const problem = (offset: number | undefined, message: string, suggestion: string): ConfigProblem => ({location: at(offset), path: '', message, suggestion})

  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > limits.maxBytes) {
    const offset = Buffer.from(text, 'utf8').toString('utf8', 0, limits.maxBytes).length
    return result([{location: positionOf(text, offset, file), path: '', message: `the file is ${formatBytes(bytes)}, over the ${formatBytes(limits.maxBytes)} limit`, suggestion: 'split the file, or remove what is not needed (docs/spec.md "Limits and YAML dialect")'}])
  }
  const unprintable = NOT_PRINTABLE.exec(text)
  if (unprintable !== null) {
    const code = unprintable[0].codePointAt(0) ?? 0
    return result([{location: positionOf(text, unprintable.index, file), path: '', message: `character U+${code.toString(16).toUpperCase().padStart(4, '0')} is not allowed in YAML (control characters and lone surrogates are not text)`, suggestion: 'remove it; in a double-quoted string it can be written as an escape such as "\\u0007"'}])
  }

  const cst = cstTokens(text, lineCounter, limits.maxDepth)
  const tokens = Array.isArray(cst) ? cst : []
  const deep = Array.isArray(cst) ? tooDeep(cst, limits.maxDepth) : cst.tooDeepAt
  if (deep !== undefined) return result([problem(deep, `lists and mappings are nested more than ${limits.maxDepth} levels deep here`, 'flatten the structure; no field of a spec or config is that deep')])

  const problems: ConfigProblem[] = []
  for (const token of tokens) {
    if (token.type !== 'directive') continue
    const version = /^%YAML\s+(\S+)/.exec(token.source)?.[1]
    if (version !== undefined && version !== '1.2') problems.push(problem(token.offset, `%YAML ${version} is not supported: canary reads YAML 1.2 (where yes, no, on and off are strings)`, 'remove the %YAML line; write booleans as true and false'))
  }
  const docs = [...new Composer({schema: 'core', uniqueKeys: false, prettyErrors: false, strict: true}).compose(tokens, true, text.length)]
  const doc = docs[0]
  const extra = docs.slice(1).find((d) => d.contents !== null || d.errors.length > 0)
  if (extra !== undefined) problems.push(problem(extra.range[0], 'a second YAML document starts here: expected one document per file', 'remove the "---" separator and everything after it, or move that document to its own file'))
  if (doc === undefined) return result(problems, null, true)
  for (const error of doc.errors) problems.push(problem(error.pos[0], `YAML syntax error: ${firstLine(error.message)}`, SYNTAX_SUGGESTION))
  for (const warning of doc.warnings) {
    // Unresolved tags are reported below with every other unsupported tag.
    if (warning.code !== 'TAG_RESOLVE_FAILED') problems.push(problem(warning.pos[0], `YAML: ${firstLine(warning.message)}`, SYNTAX_SUGGESTION))
  }
  if (problems.length > 0) return result(problems)

  const root = (doc.contents as {range?: [number, number, number]} | null)?.range?.[0]
  const built = new DataBuilder(doc, limits, index, (offset, message, suggestion) => problems.push(problem(offset, message, suggestion)), options.mapString).build(doc.contents, 1, [])
  return result(problems, problems.length > 0 ? null : built.value, doc.contents === null, root)
}

interface Built {
  readonly value: unknown
  /** Values this node stands for with every alias written out. */
  readonly size: number
  /** Levels of lists and mappings below and including it, aliases expanded. */
  readonly height: number
}

const IN_PROGRESS: Built = {value: null, size: 0, height: 0}
const EMPTY: Built = {value: null, size: 1, height: 0}

/** One pass over the composed document: checks, plain data and positions. */
class DataBuilder {
  private readonly anchors = new Map<string, Built>()
  private aliased = 0
  private aliasBudgetSpent = false

  constructor(
    private readonly doc: Document,
    private readonly limits: ConfigLimits,
    private readonly index: Map<string, FieldPosition>,
    private readonly report: (offset: number | undefined, message: string, suggestion: string) => void,
    private readonly mapString: ((value: string, offset: number | undefined) => string) | undefined,
  ) {}

  build(node: unknown, depth: number, path: readonly string[]): Built {
    if (node === null || node === undefined) return EMPTY
    const offset = rangeStart(node)
    if (isAlias(node)) return this.alias(node.source, offset, depth)
    const tag = (node as {tag?: string}).tag
    if (tag !== undefined && tag !== '!' && !CORE_TAGS.has(tag)) {
      this.report(offset, `tag ${shortTag(tag)} is not supported: values are plain YAML 1.2 (strings, numbers, booleans, null, lists and mappings)`, 'remove the tag; quote the value if it should be a string')
    }
    const anchor = (node as {anchor?: string}).anchor
    // Marks the anchor as open, so an alias to it from inside (a recursive structure) is found.
    const marker: Built = anchor === undefined ? IN_PROGRESS : {...IN_PROGRESS}
    if (anchor !== undefined) this.anchors.set(anchor, marker)
    const built = this.buildNode(node, offset, depth, path)
    // A later anchor of the same name inside this node wins (YAML: the most recent one before the alias).
    if (anchor !== undefined && this.anchors.get(anchor) === marker) this.anchors.set(anchor, built)
    return built
  }

  private buildNode(node: unknown, offset: number | undefined, depth: number, path: readonly string[]): Built {
    if (isScalar(node)) {
      const value = typeof node.value === 'string' && this.mapString !== undefined ? this.mapString(node.value, offset) : node.value
      return {value: typeof value === 'bigint' ? Number(value) : value, size: 1, height: 0}
    }
    if (isSeq(node)) {
      const items: unknown[] = []
      let size = 1
      let height = 0
      node.items.forEach((item, i) => {
        const itemPath = [...path, String(i)]
        this.index.set(indexKey(itemPath), {path: itemPath, keyOffset: rangeStart(item), valueOffset: rangeStart(item)})
        const built = this.build(item, depth + 1, itemPath)
        items.push(built.value)
        size += built.size
        height = Math.max(height, built.height)
      })
      return {value: items, size, height: height + 1}
    }
    if (isMap(node)) return this.mapping(node.items, depth, path)
    // `[a: 1]`: a pair directly in a flow list is a one-entry mapping (YAML 1.2 §7.4.1).
    if (isPair(node)) return this.mapping([node], depth, path)
    return EMPTY
  }

  private mapping(pairs: readonly {key: unknown; value: unknown}[], depth: number, path: readonly string[]): Built {
    const object: Record<string, unknown> = {}
    const merges: Record<string, unknown>[] = []
    let size = 1
    let height = 0
    let sawMerge = false
    for (const pair of pairs) {
      const keyNode = pair.key
      const keyOffset = rangeStart(keyNode)
      const key = this.build(keyNode, depth + 1, path)
      let name: string | undefined
      if (keyNode === null || keyNode === undefined || (isScalar(keyNode) && (key.value === null || key.value === undefined))) {
        this.report(keyOffset ?? rangeStart(pair.value), 'a mapping key is empty', 'write the key before the colon')
      } else if (!isScalar(keyNode)) {
        this.report(keyOffset, 'a mapping key must be a plain value, not a list, a mapping or an alias', 'write the key as text')
      } else {
        name = String(key.value)
      }
      const isMerge = name === '<<' && isScalar(keyNode) && keyNode.type === 'PLAIN' && keyNode.tag === undefined
      const fieldPath = isMerge || name === undefined ? path : [...path, name]
      if (isMerge && sawMerge) {
        this.report(keyOffset, 'duplicate key "<<": each key may appear once per mapping', 'merge several mappings with one key: <<: [*a, *b]')
      } else if (name !== undefined && !isMerge) {
        if (Object.hasOwn(object, name)) this.report(keyOffset, `duplicate key "${preview(name)}": each key may appear once per mapping`, 'remove or merge the repeated key')
        else this.index.set(indexKey(fieldPath), {path: fieldPath, keyOffset, valueOffset: isEmptyValue(pair.value) ? keyOffset : rangeStart(pair.value)})
      }
      const value = this.build(pair.value, depth + 1, fieldPath)
      size += value.size
      height = Math.max(height, value.height)
      if (name === undefined) continue
      if (isMerge) {
        const sources = isSeq(pair.value) ? (value.value as unknown[]) : [value.value]
        if (!sources.every(isPlainObject)) {
          this.report(rangeStart(pair.value) ?? keyOffset, 'merge key << takes a mapping or a list of mappings', 'write <<: *anchor or <<: [*a, *b], where each anchor names a mapping')
        } else if (!sawMerge) {
          merges.push(...(sources as Record<string, unknown>[]))
        }
        sawMerge = true
        continue
      }
      if (!Object.hasOwn(object, name)) define(object, name, value.value)
    }
    // YAML merge keys: explicit keys win, then earlier sources over later ones.
    for (const source of merges) {
      for (const [name, value] of Object.entries(source)) if (!Object.hasOwn(object, name)) define(object, name, value)
    }
    return {value: object, size, height: height + 1}
  }

  private alias(name: string, offset: number | undefined, depth: number): Built {
    const target = this.anchors.get(name)
    if (target === undefined) {
      this.report(offset, `alias *${preview(name)} has no anchor &${preview(name)} before it`, 'define the anchor (&name) before using the alias (*name)')
      return EMPTY
    }
    if (target.size === 0) {
      this.report(offset, `alias *${preview(name)} is inside the value it refers to: a recursive structure`, 'aliases may only refer to a complete value defined before them')
      return EMPTY
    }
    if (this.aliasBudgetSpent) return EMPTY
    this.aliased += target.size
    if (this.aliased > this.limits.maxAliasedValues) {
      this.aliasBudgetSpent = true
      this.report(offset, `aliases expand to more than ${this.limits.maxAliasedValues} values (a "billion laughs" document?); this alias brings the total to ${this.aliased}`, 'write the values out, or use fewer aliases of large anchors')
      return EMPTY
    }
    if (depth - 1 + target.height > this.limits.maxDepth) {
      this.report(offset, `with this alias expanded, lists and mappings are nested more than ${this.limits.maxDepth} levels deep`, 'flatten the structure; no field of a spec or config is that deep')
      return EMPTY
    }
    return target
  }
}

/**
 * yaml's CST, driven lexeme by lexeme (as Parser#parse does) so that a document nested far too
 * deep is given up at once: the parser's stack holds about one entry per open collection.
 */
function cstTokens(text: string, lineCounter: LineCounter, maxDepth: number): Token[] | {tooDeepAt: number} {
  const parser = new Parser(lineCounter.addNewLine)
  lineCounter.addNewLine(0)
  const tokens: Token[] = []
  for (const lexeme of new Lexer().lex(text)) {
    for (const token of parser.next(lexeme)) tokens.push(token)
    if (parser.stack.length > 2 * maxDepth) return {tooDeepAt: parser.offset}
  }
  for (const token of parser.end()) tokens.push(token)
  return tokens
}

/** The offset of the first collection nested deeper than `maxDepth`, from yaml's CST (walked without recursion). */
function tooDeep(tokens: readonly unknown[], maxDepth: number): number | undefined {
  const stack: Array<[unknown, number]> = tokens.map((token) => [token, 0])
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!
    if (token === null || typeof token !== 'object') continue
    const {type, items, value, offset} = token as {type?: string; items?: Array<{key?: unknown; value?: unknown}>; value?: unknown; offset?: number}
    if (type === 'document') {
      stack.push([value, depth])
    } else if (type === 'block-map' || type === 'block-seq' || type === 'flow-collection') {
      if (depth + 1 > maxDepth) return offset
      for (const item of items ?? []) stack.push([item.key, depth + 1], [item.value, depth + 1])
    }
  }
  return undefined
}

function indexKey(path: readonly string[]): string {
  let key = ''
  for (const segment of path) key += `${segment}\u0000`
  return key
}

/** `key:` with nothing after it: yaml gives it a zero-width null at the end of the line; the key is the better place to point at. */
function isEmptyValue(node: unknown): boolean {
  const range = (node as {range?: readonly number[] | null} | null | undefined)?.range
  return range === undefined || range === null || range[0] === range[1]
}

function rangeStart(node: unknown): number | undefined {
  return (node as {range?: readonly number[] | null} | null | undefined)?.range?.[0]
}

/** Own property even for "__proto__" (plain assignment would set the prototype). */
function define(object: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__') Object.defineProperty(object, name, {value, enumerable: true, writable: true, configurable: true})
  else object[name] = value
}

function isPlainObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function shortTag(tag: string): string {
  return preview(tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag)
}

function firstLine(text: string): string {
  return preview(text.split('\n')[0] ?? text, 200)
}

/** Line and column of a character offset, without a LineCounter (for checks before parsing). */
function positionOf(text: string, offset: number, file: string): SourceLocation {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return {file, line, column: offset - lineStart + 1}
}

/** YAML 1.1's booleans, which YAML 1.2 (and so canary) reads as strings. */
const YAML_11_BOOLEAN = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/

/** The hint for a boolean field given a YAML 1.1 boolean (`yes`, `on`…), which YAML 1.2 reads as a string. */
export function yaml11BooleanHint(expected: unknown, input: unknown): string | undefined {
  return expected === 'boolean' && typeof input === 'string' && YAML_11_BOOLEAN.test(input) ? `YAML 1.2 reads ${input} as a string: write true or false` : undefined
}

/** At most `max` problems, the rest counted in a last one, so a huge file cannot make a huge error. */
export function capProblems(problems: readonly ConfigProblem[], max: number = CONFIG_LIMITS.maxProblems): ConfigProblem[] {
  if (problems.length <= max) return [...problems]
  const next = problems[max]
  return [...problems.slice(0, max), {...(next?.location === undefined ? {} : {location: next.location}), path: '', message: `… and ${problems.length - max} more problems from here on (only the first ${max} are listed)`}]
}
