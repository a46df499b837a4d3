/**
 * Item 8 of issue #10: the TrafficRouter contract the fast suite runs on the fake API server
 * (test/kube/routers.test.ts), run here on the real kube-apiserver with its real RBAC, field
 * manager and CRD schemas, each test in a fresh namespace as the identity `canary render --rbac`
 * grants. The differences found between the two are listed in test/helpers/fake-apiserver/README.md.
 */
import {ROUTER_SETUPS} from '../kube/router-setups.js'
import {trafficRouterContract} from '../kube/traffic-router.contract.js'
import {realContractServer} from './real-contract-server.js'

// The harness installs Traefik v3's CRDs (group traefik.io) from the module; the legacy group
// traefik.containo.us has no CRD there, so that setup runs on the fake only (README: differences).
for (const setup of ROUTER_SETUPS.filter((s) => !s.name.includes('traefik.containo.us'))) {
  trafficRouterContract(setup, realContractServer, 'real kube-apiserver')
}
