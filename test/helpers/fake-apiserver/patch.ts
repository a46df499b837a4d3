/**
 * The patch semantics the real API server implements, as far as canary's objects need them:
 * JSON merge patch (RFC 7386), strategic merge patch (lists of named items merged by key, e.g.
 * containers by `name`), JSON patch (RFC 6902) and server-side apply field ownership.
 */

type Json = unknown
type JsonObject = Record<string, Json>

export function isObject(value: Json): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** RFC 7386: objects merge recursively, null deletes, everything else (lists too) replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch)
  const result: JsonObject = isObject(target) ? {...target} : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = mergePatch(result[key], value)
  }
  return result
}

/**
 * The merge key of a list field, as the Go struct tags `patchMergeKey` declare it for the kinds we
 * serve (core/v1 types.go). Lists not named here are replaced atomically.
 */
export function mergeKeyOf(field: string, items: readonly Json[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'volumes':
    case 'env':
    case 'imagePullSecrets':
      return 'name'
    case 'volumeMounts':
      return 'mountPath'
    case 'ports':
      return items.some((i) => isObject(i) && 'containerPort' in i) ? 'containerPort' : 'port'
    default:
      return undefined
  }
}

/** Strategic merge patch: like merge patch, but keyed lists merge item by item; `$patch: delete|replace` honoured. */
export function strategicMergePatch(target: Json, patch: Json, field = ''): Json {
  if (Array.isArray(patch)) {
    const key = mergeKeyOf(field, patch)
    if (key === undefined || !Array.isArray(target)) return structuredClone(patch.filter((i) => !(isObject(i) && i.$patch === 'delete')))
    const result = [...target]
    for (const item of patch) {
      if (!isObject(item)) continue
      const index = result.findIndex((existing) => isObject(existing) && existing[key] === item[key])
      if (item.$patch === 'delete') {
        if (index >= 0) result.splice(index, 1)
      } else if (index >= 0) {
        result[index] = strategicMergePatch(result[index], item)
      } else {
        result.push(strategicMergePatch(undefined, item))
      }
    }
    return result
  }
  if (!isObject(patch)) return structuredClone(patch)
  if (patch.$patch === 'replace') {
    const {$patch: _, ...rest} = patch
    return structuredClone(rest)
  }
  const result: JsonObject = isObject(target) ? {...target} : {}
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith('$setElementOrder/')) continue
    if (value === null) delete result[key]
    else result[key] = strategicMergePatch(result[key], value, key)
  }
  return result
}

/** An RFC 6902 operation. */
export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'test' | 'move' | 'copy'
  path: string
  value?: Json
  from?: string
}

/** Thrown when a JSON patch cannot be applied; the server answers 422. */
export class JsonPatchError extends Error {
  constructor(message: string, readonly testFailed = false) {
    super(message)
  }
}

function pointer(path: string): string[] {
  if (path === '') return []
  if (!path.startsWith('/')) throw new JsonPatchError(`invalid JSON pointer ${JSON.stringify(path)}`)
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function parentOf(document: Json, tokens: string[]): {parent: Json; last: string} {
  let node = document
  for (const token of tokens.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(token)] : isObject(node) ? node[token] : undefined
    if (node === undefined) throw new JsonPatchError(`doc is missing path: ${tokens.join('/')}`)
  }
  return {parent: node, last: tokens[tokens.length - 1] ?? ''}
}

function getAt(document: Json, tokens: string[]): Json {
  let node = document
  for (const token of tokens) node = Array.isArray(node) ? node[Number(token)] : isObject(node) ? node[token] : undefined
  return node
}

export function jsonPatch(document: Json, operations: readonly JsonPatchOperation[]): Json {
  let doc = structuredClone(document)
  for (const op of operations) {
    const tokens = pointer(op.path)
    if (op.op === 'test') {
      if (JSON.stringify(getAt(doc, tokens)) !== JSON.stringify(op.value)) throw new JsonPatchError(`testing value ${op.path} failed`, true)
      continue
    }
    let value = op.value
    if (op.op === 'move' || op.op === 'copy') {
      const from = pointer(op.from ?? '')
      value = structuredClone(getAt(doc, from))
      if (value === undefined) throw new JsonPatchError(`doc is missing from path: ${op.from}`)
      if (op.op === 'move') doc = jsonPatch(doc, [{op: 'remove', path: op.from ?? ''}])
    }
    if (tokens.length === 0) {
      if (op.op === 'remove') throw new JsonPatchError('cannot remove the root')
      doc = structuredClone(value)
      continue
    }
    const {parent, last} = parentOf(doc, tokens)
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last)
      if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new JsonPatchError(`index out of range: ${op.path}`)
      if (op.op === 'remove' || op.op === 'replace') {
        if (index >= parent.length) throw new JsonPatchError(`doc is missing path: ${op.path}`)
        if (op.op === 'remove') parent.splice(index, 1)
        else parent[index] = value
      } else {
        parent.splice(index, 0, value)
      }
    } else if (isObject(parent)) {
      // Only remove needs the key: the real server's json-patch (evanphx v4) lets replace set a missing object key.
      if (op.op === 'remove' && !(last in parent)) throw new JsonPatchError(`Unable to remove nonexistent key: ${last}: missing value`)
      if (op.op === 'remove') delete parent[last]
      else parent[last] = value
    } else {
      throw new JsonPatchError(`doc is missing path: ${op.path}`)
    }
  }
  return doc
}

/** Separates the tokens of a field path (annotation keys contain dots and slashes). */
const SEP = '\u001f'

/**
 * Field paths in server-side apply's sense: object keys, and items of keyed lists by their key
 * (`containers`, `{"name":"web"}`, `image`). Unkeyed lists are one atomic field. Each path maps to
 * the JSON of its value, so two managers setting the same value do not conflict.
 */
export function leafFields(value: Json, prefix: readonly string[] = [], field = ''): Map<string, string> {
  const out = new Map<string, string>()
  if (isObject(value) && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) {
      for (const [path, leaf] of leafFields(child, [...prefix, key], key)) out.set(path, leaf)
    }
    return out
  }
  if (Array.isArray(value) && value.length > 0) {
    const key = mergeKeyOf(field, value)
    if (key !== undefined && value.every((i) => isObject(i) && i[key] !== undefined)) {
      for (const item of value as JsonObject[]) {
        for (const [path, leaf] of leafFields(item, [...prefix, `=${key}=${String(item[key])}`])) out.set(path, leaf)
      }
      return out
    }
  }
  out.set(prefix.join(SEP), JSON.stringify(value))
  return out
}

/** `.spec.template.spec.containers[name="web"].image`, the way conflict messages print a path. */
export function displayField(path: string): string {
  return path.split(SEP).map((t) => {
    const keyed = /^=([^=]+)=(.*)$/.exec(t)
    return keyed === null ? `.${t}` : `[${keyed[1]}="${keyed[2]}"]`
  }).join('')
}

/** Apply merges like a strategic merge patch (keyed lists by key, other lists replaced). */
export function applyMerge(live: Json, applied: Json): Json {
  return strategicMergePatch(live, applied)
}

/**
 * Removes one field path (as produced by leafFields) from an object, when an applier drops a field.
 * Maps left empty by the removal go too: the applier owned them as well (fieldsV1 lists them).
 */
export function removeField(document: Json, path: string): void {
  const tokens = path.split(SEP)
  const parents: Array<{container: JsonObject | Json[]; key: string | number}> = []
  let node: Json = document
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? ''
    const last = i === tokens.length - 1
    const keyed = /^=([^=]+)=(.*)$/.exec(token)
    if (keyed !== null && Array.isArray(node)) {
      const [, key, keyValue] = keyed
      const index = node.findIndex((item) => isObject(item) && String(item[key ?? '']) === keyValue)
      if (index < 0) return
      if (last) {
        node.splice(index, 1)
        break
      }
      parents.push({container: node, key: index})
      node = node[index]
      continue
    }
    if (!isObject(node)) return
    if (last) {
      delete node[token]
      break
    }
    parents.push({container: node, key: token})
    node = node[token]
  }
  for (const {container, key} of parents.reverse()) {
    const child = Array.isArray(container) ? container[key as number] : container[key as string]
    if (!isObject(child) || Object.keys(child).length > 0) return
    if (Array.isArray(container)) container.splice(key as number, 1)
    else delete container[key as string]
  }
}
