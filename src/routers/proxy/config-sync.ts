/**
 * How the bundled proxy, running in a pod, follows its routing ConfigMap through the API instead
 * of a mounted file: kubelet refreshes ConfigMap volumes only every minute or so, a watch delivers a
 * change in milliseconds. The CLI changes weights by writing the ConfigMap (kube-router.ts);
 * each proxy replica applies the new text as soon as its watch reports it. A dropped watch is
 * resumed from the last resourceVersion (or re-read when that is too old); a text that does not
 * parse is refused by the proxy, which keeps serving the previous config.
 */
import {parseProxyConfig, type ProxyConfig} from '../../proxy/config.js'
import {PROXY_CONFIG_FILE} from './objects.js'
import {connectKube, type KubeClient} from '../../kube/client.js'
import type {KubeObject, ObjectRef} from '../../kube/objects.js'

/** Operational events of the follower (reconnects, errors). */
export type FollowLog = (event: Record<string, unknown>) => void

/** Options of followConfigMap. */
export interface FollowOptions {
  /** Wait before re-watching after a failure. */
  readonly retryMs?: number
  readonly log?: FollowLog
}

function keyOf(object: KubeObject | undefined, key: string): string | undefined {
  return (object?.data as Record<string, string> | undefined)?.[key]
}

/**
 * Calls `onText` with the value of `key` now and after every change, until `signal` aborts.
 * Resolves once the first value was delivered and the watch is running.
 */
export async function followConfigMap(client: KubeClient, ref: ObjectRef, key: string, onText: (text: string) => Promise<void> | void, signal: AbortSignal, options: FollowOptions = {}): Promise<void> {
  const retryMs = options.retryMs ?? 1000
  const log = options.log ?? (() => undefined)
  let lastText: string | undefined
  let resourceVersion: string | undefined

  const deliver = async (text: string | undefined) => {
    if (text === undefined || text === lastText) return
    lastText = text
    await onText(text)
  }

  const start = async (): Promise<void> => {
    const live = await client.read(ref, signal)
    resourceVersion = live?.metadata?.resourceVersion
    await deliver(keyOf(live, key))
    await client.watch(ref, resourceVersion, (event) => {
      if (event.type === 'ERROR') return
      resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion
      if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        deliver(keyOf(event.object, key)).catch((error: unknown) => log({level: 'error', msg: 'applying the routing ConfigMap failed', error: String(error)}))
      }
    }, (error) => {
      log({level: error === undefined ? 'info' : 'warn', msg: 'routing ConfigMap watch ended; resuming', ...(error === undefined ? {} : {error: String(error)})})
      restart()
    }, signal)
  }

  const restart = () => {
    if (signal.aborted) return
    const timer = setTimeout(() => {
      start().catch((error: unknown) => {
        log({level: 'warn', msg: 'routing ConfigMap watch failed; retrying', error: String(error)})
        restart()
      })
    }, retryMs)
    signal.addEventListener('abort', () => clearTimeout(timer), {once: true})
  }

  await start()
}

/** Anything whose config can be swapped (a running proxy or proxy cluster). */
export interface ReloadableProxy {
  reload(config: ProxyConfig): Promise<number>
}

/**
 * `canary proxy --follow-config-map NAMESPACE/NAME`: connects with the pod's service account (or
 * the kubeconfig) and reloads the proxy with the ConfigMap's `proxy.yaml` on every change. A text
 * that does not parse is logged and the previous config keeps serving.
 */
export async function followConfigMapIntoProxy(target: string, proxy: ReloadableProxy, signal: AbortSignal, log: FollowLog = (event) => process.stderr.write(`${JSON.stringify(event)}\n`)): Promise<void> {
  const [namespace, name] = target.includes('/') ? target.split('/', 2) : [undefined, target]
  const client = await connectKube(namespace === undefined ? {} : {namespace})
  const ref: ObjectRef = {apiVersion: 'v1', kind: 'ConfigMap', namespace: namespace ?? client.namespace, name: name ?? ''}
  await followConfigMap(client, ref, PROXY_CONFIG_FILE, async (text) => {
    try {
      const generation = await proxy.reload(parseProxyConfig(text, `configmap:${ref.namespace}/${ref.name}`))
      log({level: 'info', msg: 'routing ConfigMap applied', configMap: `${ref.namespace}/${ref.name}`, generation})
    } catch (error) {
      log({level: 'error', msg: 'routing ConfigMap refused; the previous config keeps serving', configMap: `${ref.namespace}/${ref.name}`, error: String(error)})
    }
  }, signal, {log})
}
