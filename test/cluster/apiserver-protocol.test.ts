/**
 * Item 8 of issue #10: the Kubernetes protocol contract the fast suite runs on the fake API server
 * (test/kube/fake-apiserver.test.ts), run here on the real kube-apiserver. Differences found are
 * listed in test/helpers/fake-apiserver/README.md.
 */
import {apiServerProtocolContract} from '../kube/apiserver-protocol.contract.js'
import {realProtocolServer} from './real-contract-server.js'

apiServerProtocolContract(realProtocolServer, 'real kube-apiserver')
