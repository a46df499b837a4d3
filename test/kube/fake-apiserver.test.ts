/**
 * The fake API server, driven by the real @kubernetes/client-node through a kubeconfig: the
 * protocol contract (also run against the real kube-apiserver by the cluster suite), plus the
 * test hooks only the fake has.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import * as k8s from '@kubernetes/client-node'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {startFakeApiServer, type FakeApiServer} from '../helpers/fake-apiserver/index.js'
import {apiServerProtocolContract} from './apiserver-protocol.contract.js'

apiServerProtocolContract(async () => {
  const fake = await startFakeApiServer({namespace: 'shop'})
  return {
    namespace: 'shop',
    kubeconfigPath: fake.kubeconfigPath,
    user: fake.user,
    get: async (apiVersion, kind, name) => fake.get(apiVersion, kind, 'shop', name),
    seed: async (object) => fake.seed(object),
    deny: async (verb, resource) => void fake.denyRules.push({verb, resource}),
    addUser: async (name, rules) => {
      const user = `system:serviceaccount:shop:${name}`
      return {kubeconfigPath: fake.addUser(user, rules), user}
    },
    async podUpstream(name) {
      const upstream = http.createServer((request, response) => response.end(`path=${request.url}`))
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
      fake.seed({apiVersion: 'v1', kind: 'Pod', metadata: {name, namespace: 'shop'}, spec: {containers: [{name: 'proxy', image: 'canary:1'}]}})
      fake.setPodProxy('shop', name, 9090, `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`)
      return {port: 9090, bodyFor: (path) => `path=${path}`, stop: () => new Promise<void>((resolve) => upstream.close(() => resolve()))}
    },
    close: () => fake.close(),
  }
}, 'fake API server')

describe('fake API server: test hooks', () => {
  let fake: FakeApiServer
  let kc: k8s.KubeConfig

  beforeEach(async () => {
    fake = await startFakeApiServer({namespace: 'shop'})
    kc = new k8s.KubeConfig()
    kc.loadFromFile(fake.kubeconfigPath)
  })

  afterEach(async () => {
    await fake.close()
  })

  it('lets tests steer Deployment status: manual, then made available through the status subresource', async () => {
    fake.deploymentBehaviour = () => 'manual'
    const apps = kc.makeApiClient(k8s.AppsV1Api)
    await apps.createNamespacedDeployment({namespace: 'shop', body: {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'web', namespace: 'shop'},
      spec: {selector: {matchLabels: {app: 'web'}}, template: {metadata: {labels: {app: 'web'}}, spec: {containers: [{name: 'app', image: 'shop:1'}]}}},
    }})
    expect((await apps.readNamespacedDeployment({name: 'web', namespace: 'shop'})).status?.availableReplicas).toBeUndefined()
    fake.makeDeploymentAvailable('shop', 'web')
    expect((await apps.readNamespacedDeployment({name: 'web', namespace: 'shop'})).status?.availableReplicas).toBe(1)
  })
})
