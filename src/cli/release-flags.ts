/**
 * The flags and argument every lifecycle command shares: NAME, `-f/--file`, and kubectl's
 * connection flags (`--target`, `--kubeconfig`, `--context`, `-n/--namespace`). Spread
 * `releaseFlags` into a command's `flags` and `releaseArgs` into its `args`;
 * `BaseCommand.openRelease` turns the parsed values into the session. Importing this costs
 * nothing: the Kubernetes client is loaded only when a command actually talks to a cluster
 * (src/kube/client.ts).
 */
import {Args, Flags} from '@oclif/core'

import {UsageError} from '../errors.js'
import type {KubeConnectionOptions} from '../kube/client.js'
import {parseDurationMs} from '../release/duration.js'
import {TARGET_KINDS, type TargetKind} from '../release/release.js'

/** kubectl's connection flags. */
export const kubeFlags = {
  target: Flags.string({summary: 'Where the release runs; overrides spec.target.', options: [...TARGET_KINDS], helpGroup: 'KUBERNETES'}),
  kubeconfig: Flags.string({summary: 'Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).', helpGroup: 'KUBERNETES'}),
  context: Flags.string({summary: 'Kubeconfig context (default: the current context).', helpGroup: 'KUBERNETES'}),
  namespace: Flags.string({char: 'n', summary: "Namespace (default: the spec's metadata.namespace, then the context's).", helpGroup: 'KUBERNETES'}),
}

/** The spec file and the connection flags: what selects a release. */
export const releaseFlags = {
  file: Flags.string({char: 'f', summary: 'Release spec file.', default: 'canary.yaml'}),
  ...kubeFlags,
}

/** NAME, checked against the release the spec defines. */
export const releaseArgs = {name: Args.string({description: 'Release name (optional when the spec defines one release).'})}

/** Parsed values of `releaseFlags`. */
export interface ReleaseFlagValues {
  readonly file: string
  readonly target?: string
  readonly kubeconfig?: string
  readonly context?: string
  readonly namespace?: string
}

/** What openSession needs from those flags. */
export interface SessionOverrides {
  readonly target?: TargetKind
  readonly kube?: KubeConnectionOptions
}

/** The session overrides for parsed flags. */
export function sessionOverrides(flags: Omit<ReleaseFlagValues, 'file'>): SessionOverrides {
  const kube: KubeConnectionOptions = {
    ...(flags.kubeconfig === undefined ? {} : {kubeconfig: flags.kubeconfig}),
    ...(flags.context === undefined ? {} : {context: flags.context}),
    ...(flags.namespace === undefined ? {} : {namespace: flags.namespace}),
  }
  return {...(flags.target === undefined ? {} : {target: flags.target as TargetKind}), kube}
}

/** `--timeout` in milliseconds (undefined when not given); a UsageError (exit 2) when it is not a duration. */
export function timeoutMsOf(timeout: string | undefined): number | undefined {
  if (timeout === undefined) return undefined
  const ms = parseDurationMs(timeout)
  if (ms === undefined) throw new UsageError(`--timeout ${timeout}: not a duration`, {suggestions: ['Use e.g. 30s, 2m or 1h30m.']})
  return ms
}
