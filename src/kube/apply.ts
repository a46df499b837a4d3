/**
 * Writes with ownership: canary creates objects labelled `app.kubernetes.io/managed-by: canary`,
 * refuses to modify or delete an object it does not own (exit 5, naming it: Argo's nginx router does
 * the same), and writes only when the live object does not already say what we want.
 */
import {ConflictError} from '../errors.js'
import type {KubeClient} from './client.js'
import {containsDesired, isManagedByCanary, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASE_LABEL, subjectOf, type KubeObject, type ObjectRef} from './objects.js'

/** What an idempotent write did. */
export interface ApplyResult {
  readonly object: KubeObject
  /** False when the live object already matched and nothing was sent. */
  readonly written: boolean
}

/** Adds canary's ownership labels to a desired object. */
export function withOwnership(desired: KubeObject, release: string): KubeObject {
  return {...desired, metadata: {...desired.metadata, labels: {...desired.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [RELEASE_LABEL]: release}}}
}

/** The error for an object that exists but is not canary's. */
export function notOwnedError(object: KubeObject | ObjectRef, verb: string): ConflictError {
  const subject = subjectOf(object)
  const kind = (object.kind ?? '').toLowerCase()
  const name = 'metadata' in object && object.metadata !== undefined ? (object.metadata.name ?? '') : String((object as ObjectRef).name)
  return new ConflictError(`${subject}: refusing to ${verb} it: it exists and is not managed by canary (no label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE})`, {
    subject,
    suggestions: [
      "Rename the release (metadata.name) so canary's objects do not collide with yours,",
      `or, if canary should take it over: kubectl label ${kind} ${name} ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
    ],
  })
}

/**
 * Creates or updates an object canary owns, by server-side apply with field manager `canary`
 * (forced: on its own objects canary's intent wins over a manual edit). No request is sent when
 * the live object already contains every desired field.
 */
export async function applyOwned(client: KubeClient, desired: KubeObject, release: string, signal: AbortSignal): Promise<ApplyResult> {
  const owned = withOwnership(desired, release)
  const ref: ObjectRef = {apiVersion: owned.apiVersion ?? 'v1', kind: owned.kind ?? '', namespace: owned.metadata?.namespace ?? client.namespace, name: owned.metadata?.name ?? ''}
  const live = await client.read(ref, signal)
  if (live !== undefined) {
    if (!isManagedByCanary(live, release)) throw notOwnedError(live, 'update')
    if (containsDesired(live, stripServerFields(owned))) return {object: live, written: false}
  }
  const object = await client.apply({...owned, metadata: {...owned.metadata, namespace: ref.namespace}}, {force: true}, signal)
  return {object, written: true}
}

/** Deletes an object canary owns; absent is fine, not owned is a ConflictError. True when deleted. */
export async function deleteOwned(client: KubeClient, ref: ObjectRef, release: string, signal: AbortSignal): Promise<boolean> {
  const live = await client.read(ref, signal)
  if (live === undefined) return false
  if (!isManagedByCanary(live, release)) throw notOwnedError(live, 'delete')
  return client.delete(ref, signal)
}

function stripServerFields(object: KubeObject): KubeObject {
  const {resourceVersion: _r, uid: _u, creationTimestamp: _c, generation: _g, managedFields: _m, ...metadata} = object.metadata ?? {}
  const {status: _s, ...rest} = object
  return {...rest, metadata}
}
