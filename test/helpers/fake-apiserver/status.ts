/**
 * metav1.Status bodies, worded like the real API server's (apimachinery `pkg/api/errors`), so
 * error mapping is tested against what users will actually see.
 */
import {qualifiedResource, type ResourceType} from './resources.js'

/** A metav1.Status failure body plus its HTTP code. */
export interface StatusFailure {
  readonly code: number
  readonly body: Record<string, unknown>
}

/** One reason a request was invalid (metav1.StatusCause). */
export interface StatusCause {
  readonly reason?: string
  readonly message: string
  readonly field?: string
  readonly type?: string
}

function failure(code: number, reason: string, message: string, details?: Record<string, unknown>): StatusFailure {
  return {code, body: {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details === undefined ? {} : {details}), code}}
}

export function notFound(type: ResourceType, name: string): StatusFailure {
  return failure(404, 'NotFound', `${qualifiedResource(type)} "${name}" not found`, {name, group: type.group, kind: type.resource})
}

export function alreadyExists(type: ResourceType, name: string): StatusFailure {
  return failure(409, 'AlreadyExists', `${qualifiedResource(type)} "${name}" already exists`, {name, group: type.group, kind: type.resource})
}

export function staleConflict(type: ResourceType, name: string): StatusFailure {
  return failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {name, group: type.group, kind: type.resource})
}

export function applyConflict(type: ResourceType, name: string, conflicts: ReadonlyArray<{manager: string; field: string}>): StatusFailure {
  const lines = conflicts.map((c) => `conflict with "${c.manager}": ${c.field}`)
  const message = conflicts.length === 1 ? `Apply failed with 1 conflict: ${lines[0]}` : `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n- ')}`
  return failure(409, 'Conflict', message, {name, group: type.group, kind: type.resource, causes: conflicts.map((c) => ({type: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: c.field}))})
}

export function invalid(type: ResourceType, name: string, causes: readonly StatusCause[]): StatusFailure {
  const parts = causes.map((c) => `${c.field === undefined ? '' : `${c.field}: `}${c.message}`)
  const list = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`
  const groupKind = type.group === '' ? type.kind : `${type.kind}.${type.group}`
  return failure(422, 'Invalid', `${groupKind} "${name}" is invalid: ${list}`, {name, group: type.group, kind: type.kind, causes})
}

/** What the real server answers when a JSON patch `test` operation fails (evanphx/json-patch's error is not passed on). */
export function jsonPatchTestFailed(): StatusFailure {
  return failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {})
}

export function forbidden(type: ResourceType | {group: string; resource: string}, verb: string, user: string, namespace: string | undefined, name: string | undefined, subresource?: string): StatusFailure {
  const qualified = type.group === '' ? type.resource : `${type.resource}.${type.group}`
  const resource = subresource === undefined ? type.resource : `${type.resource}/${subresource}`
  const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`
  const message = `${qualified}${name === undefined ? '' : ` "${name}"`} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${type.group}" ${scope}`
  return failure(403, 'Forbidden', message, {...(name === undefined ? {} : {name}), group: type.group, kind: type.resource})
}

export function unsupportedMediaType(contentType: string, accepted: readonly string[]): StatusFailure {
  return failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`, {causes: [{reason: 'UnsupportedMediaType', message: contentType}]})
}

export function badRequest(message: string): StatusFailure {
  return failure(400, 'BadRequest', message)
}

export function unauthorized(): StatusFailure {
  return failure(401, 'Unauthorized', 'Unauthorized')
}

export function gone(message: string): StatusFailure {
  return failure(410, 'Expired', message)
}

export function methodNotAllowed(): StatusFailure {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
}

export function pathNotFound(path: string): StatusFailure {
  return failure(404, 'NotFound', `the server could not find the requested resource (path ${path})`)
}
