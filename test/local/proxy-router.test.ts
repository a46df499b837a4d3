/**
 * The local TrafficRouter (src/local/proxy-router.ts) passes the same contract as the Kubernetes
 * routers, against a real bundled proxy on loopback whose config is built the way the local
 * daemon builds it (buildProxyConfig), with real stable and canary upstreams.
 */
import {randomBytes} from 'node:crypto'

import {stringify} from 'yaml'

import {ProxyRouter} from '../../src/local/proxy-router.js'
import {parseRelease} from '../../src/release/load-release.js'
import type {Release} from '../../src/release/release.js'
import {weights} from '../../src/rollout/core/weights.js'
import {buildProxyConfig} from '../../src/routers/proxy/objects.js'
import {config, start, startUpstream} from '../proxy/helpers.js'
import {trafficRouterContract} from '../helpers/traffic-router.contract.js'

function localRelease(totalWeight: number | undefined, stable: string, canary: string): Release {
  const lines = [
    'apiVersion: canary.dev/v1alpha1',
    'kind: Release',
    'metadata: {name: web}',
    'spec:',
    '  image: ghcr.io/acme/web:v1',
    '  port: 8080',
    `  steps: [10, 50, ${totalWeight ?? 100}]`,
    ...(totalWeight === undefined ? [] : [`  totalWeight: ${totalWeight}`]),
    '  match: {header: {name: X-Canary}}',
    `  local: {upstreams: {v1: ['${stable}'], v2: ['${canary}']}}`,
    '',
  ]
  return parseRelease(lines.join('\n'), 'release.yaml').release
}

trafficRouterContract({
  name: 'bundled proxy, local (admin API)',
  start: async (totalWeight) => {
    const stable = await startUpstream('stable')
    const canary = await startUpstream('canary')
    const release = localRelease(totalWeight, stable.url, canary.url)
    const token = randomBytes(16).toString('hex')
    const text = stringify(buildProxyConfig(release, {stableServers: [stable.url], canaryServers: [canary.url], weights: weights(0, release.totalWeight), listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', adminToken: token}))
    const proxy = await start(config(text))
    const connect = async () => new ProxyRouter(release, {url: proxy.adminUrl, token})
    return {
      router: await connect(),
      restart: connect,
      close: async () => {
        await proxy.close()
        await Promise.all([stable.close(), canary.close()])
      },
    }
  },
})
