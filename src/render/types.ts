/** Types shared by the object builders. */
import type {Weights} from '../rollout/core/weights.js'
import type {TemplateSet} from './template-set.js'

/** The state to render: which images run and how traffic is split. */
export interface RenderState {
  /** Image of the stable track (usually the spec's `image`). */
  readonly stableImage: string
  /** Image of the canary track; no canary objects are rendered when absent. */
  readonly canaryImage?: string
  /** Canary share of traffic; stable gets the rest. */
  readonly weights: Weights
}

/** A rendered Kubernetes object: plain JSON-compatible data, ready to print or apply. */
export interface KubeObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: {readonly name: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>>}
  readonly [field: string]: unknown
}

/** Options every builder takes. */
export interface BuildOptions {
  /** Templates to fill; the bundled ones when absent. */
  readonly templates?: TemplateSet
}
