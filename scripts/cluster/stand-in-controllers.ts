/**
 * The only stand-in for the controllers this cluster does not run (no kube-controller-manager, no
 * kubelet): it marks every Deployment rolled out and available through the `status` subresource,
 * as envtest users do, so `canary start`/`promote` see what a healthy cluster reports. It writes
 * only when the status is stale, so a Deployment that is already current costs nothing.
 * EndpointSlices are not invented here: the suite publishes them for the pods it actually runs.
 *
 * Environment: CANARY_CLUSTER_API, CANARY_CLUSTER_CA (file), CANARY_CLUSTER_TOKEN (admin).
 */
import {readFileSync} from 'node:fs'

import {Agent, fetch} from 'undici'

interface Deployment {
  metadata: {name: string; namespace: string; generation?: number; resourceVersion: string}
  spec: {replicas?: number}
  status?: {observedGeneration?: number; replicas?: number; updatedReplicas?: number; availableReplicas?: number; readyReplicas?: number}
}

const api = process.env.CANARY_CLUSTER_API!
const dispatcher = new Agent({connect: {ca: readFileSync(process.env.CANARY_CLUSTER_CA!)}})
const headers = {authorization: `Bearer ${process.env.CANARY_CLUSTER_TOKEN!}`}

/** True when the status already says: this generation observed, every replica updated and available. */
function isCurrent(d: Deployment): boolean {
  const replicas = d.spec.replicas ?? 1
  const s = d.status ?? {}
  return s.observedGeneration === d.metadata.generation && s.replicas === replicas && s.updatedReplicas === replicas && s.availableReplicas === replicas && s.readyReplicas === replicas
}

async function markAvailable(d: Deployment): Promise<void> {
  if (isCurrent(d)) return
  const replicas = d.spec.replicas ?? 1
  const now = new Date().toISOString()
  const status = {
    observedGeneration: d.metadata.generation, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas, unavailableReplicas: 0,
    conditions: [
      {type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'marked available by the cluster harness', lastUpdateTime: now, lastTransitionTime: now},
      {type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: 'marked rolled out by the cluster harness', lastUpdateTime: now, lastTransitionTime: now},
    ],
  }
  const url = `${api}/apis/apps/v1/namespaces/${d.metadata.namespace}/deployments/${d.metadata.name}/status`
  const response = await fetch(url, {method: 'PATCH', dispatcher, headers: {...headers, 'content-type': 'application/merge-patch+json'}, body: JSON.stringify({status})})
  // 404: deleted meanwhile; 409 cannot happen with a merge patch without resourceVersion.
  if (!response.ok && response.status !== 404) console.error(`deployment ${d.metadata.namespace}/${d.metadata.name}: status patch ${response.status}: ${await response.text()}`)
  else console.log(`deployment ${d.metadata.namespace}/${d.metadata.name}: generation ${d.metadata.generation} marked available (${replicas} replicas)`)
}

/** List, then watch from the list's resourceVersion; start over when the watch ends or expires. */
async function follow(): Promise<never> {
  for (;;) {
    try {
      const list = await fetch(`${api}/apis/apps/v1/deployments`, {dispatcher, headers})
      const body = (await list.json()) as {metadata: {resourceVersion: string}; items: Deployment[]}
      for (const d of body.items) await markAvailable(d)
      const watch = await fetch(`${api}/apis/apps/v1/deployments?watch=1&allowWatchBookmarks=false&resourceVersion=${body.metadata.resourceVersion}`, {dispatcher, headers})
      let buffered = ''
      for await (const chunk of watch.body!) {
        buffered += Buffer.from(chunk as Uint8Array).toString('utf8')
        let newline
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline)
          buffered = buffered.slice(newline + 1)
          if (line.trim() === '') continue
          const event = JSON.parse(line) as {type: string; object: Deployment}
          if (event.type === 'ADDED' || event.type === 'MODIFIED') await markAvailable(event.object)
        }
      }
    } catch (error) {
      // The API server restarting (the fault tests stop it) ends the watch: retry.
      console.error(`watch: ${error instanceof Error ? error.message : String(error)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

void follow()
