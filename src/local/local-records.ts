/**
 * Schemas of the small files the release daemon and the CLI share in `.canary/<release>/`
 * (src/local/paths.ts). Each is validated whole when read (src/local/json-record.ts): a corrupt
 * record is reported by file and field (exit 3), never acted on. That matters most for the
 * process groups, which `canary down` signals: a pid of 0 or 1 there would mean "every process".
 */
import * as z from 'zod/mini'

import type {RecordKind} from './json-record.js'

const url = z.string().check(z.regex(/^https?:\/\/[^\s/]+$/))
/** A process or process group the daemon started: never 0 (our own group) or 1 (every process). */
const pid = z.int().check(z.minimum(2))

/** `daemon.json`: how the CLI finds the daemon. */
export const daemonInfoSchema = z.strictObject({
  pid,
  /** Boot id and start time of the daemon (src/local/processes.ts): a reused pid is not the daemon. */
  identity: z.optional(z.string()),
  controlUrl: url,
  proxyUrl: url,
  adminUrl: url,
  stableImage: z.string().check(z.minLength(1)),
  startedAt: z.string(),
})

export type DaemonInfo = z.output<typeof daemonInfoSchema>

/** `replica-groups.json`: process groups of the replicas, so `canary down` can stop them after the daemon died. */
export const replicaGroupsSchema = z.array(z.union([pid, z.strictObject({pid, identity: z.optional(z.string())})]))

export type ReplicaGroup = {readonly pid: number; readonly identity?: string | undefined}

/** `daemon-error.json`: why the daemon could not start, with the error's code when it has one. */
export const daemonErrorSchema = z.looseObject({
  message: z.string(),
  code: z.optional(z.string()),
})

const recovery = '`canary down` stops what is left and removes the release\'s files; then `canary start` or `canary run` again.'

export const DAEMON_INFO_KIND: RecordKind = {what: 'daemon record', suggestions: ['canary writes this file whole, so another program changed it.', `Stop the daemon yourself if it still runs (its pid is in the file), remove the file, then: ${recovery}`]}
export const REPLICA_GROUPS_KIND: RecordKind = {what: 'replica process groups record', suggestions: ['canary will not signal process groups it cannot read.', `Stop the replicas yourself if they still run, remove the file, then: ${recovery}`]}
export const DAEMON_ERROR_KIND: RecordKind = {what: 'daemon error record', suggestions: ['See daemon.log beside it for why the daemon stopped.']}
