/**
 * kubectl's connection flags, shared by every lifecycle command: `--target`, `--kubeconfig`,
 * `--context`, `-n/--namespace`. Importing this costs nothing: the Kubernetes client is loaded only
 * when a command actually talks to a cluster (src/kube/client.ts).
 */
import {Flags} from '@oclif/core'

import {TARGET_KINDS, type TargetKind} from '../release/release.js'
import type {KubeConnectionOptions} from '../kube/client.js'

/** Flags to spread into a command's `flags`. */
export const kubeFlags = {
  target: Flags.string({summary: 'Where the release runs; overrides spec.target.', options: [...TARGET_KINDS], helpGroup: 'KUBERNETES'}),
  kubeconfig: Flags.string({summary: 'Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).', helpGroup: 'KUBERNETES'}),
  context: Flags.string({summary: 'Kubeconfig context (default: the current context).', helpGroup: 'KUBERNETES'}),
  namespace: Flags.string({char: 'n', summary: "Namespace (default: the spec's metadata.namespace, then the context's).", helpGroup: 'KUBERNETES'}),
}

/** What openSession needs from those flags. */
export interface SessionOverrides {
  readonly target?: TargetKind
  readonly kube?: KubeConnectionOptions
}

/** The session overrides for parsed flags. */
export function sessionOverrides(flags: {readonly target?: string; readonly kubeconfig?: string; readonly context?: string; readonly namespace?: string}): SessionOverrides {
  const kube: KubeConnectionOptions = {
    ...(flags.kubeconfig === undefined ? {} : {kubeconfig: flags.kubeconfig}),
    ...(flags.context === undefined ? {} : {context: flags.context}),
    ...(flags.namespace === undefined ? {} : {namespace: flags.namespace}),
  }
  return {...(flags.target === undefined ? {} : {target: flags.target as TargetKind}), kube}
}
