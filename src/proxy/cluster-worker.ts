/**
 * Entry point of a cluster worker (`canary proxy --workers N`): runs one ProxyInstance on the
 * shared port and answers the primary's calls over IPC. Started only by cluster.ts.
 */
import {isCanaryError, messageOf} from '../errors.js'
import type {PrimaryMessage, WorkerCall, WorkerMessage} from './cluster-protocol.js'
import {ProxyInstance} from './proxy-instance.js'

let instance: ProxyInstance | undefined

function send(message: WorkerMessage): void {
  process.send?.(message)
}

async function answer(call: WorkerCall): Promise<unknown> {
  if (instance === undefined) throw new Error('worker not started')
  switch (call.method) {
    case 'apply':
      instance.apply(call.config, call.generation)
      return {generation: call.generation}
    case 'setWeights':
      return instance.setWeights(call.service, call.weights)
    case 'services':
      return instance.services()
    case 'counters':
      return instance.counters()
    case 'window':
      return instance.stats.window(call.service, call.versions, call.sinceMs, call.untilMs)
    case 'drain':
      await instance.close()
      return {drained: true}
  }
}

process.on('message', (message: PrimaryMessage) => {
  if (message.type === 'start') {
    try {
      instance = new ProxyInstance(message.config, message.generation, message.retentionSeconds)
    } catch (error) {
      send({type: 'failed', error: messageOf(error)})
      return
    }
    instance.listen(message.listen).then(
      (address) => send({type: 'ready', host: address.host, port: address.port}),
      (error: unknown) => send({type: 'failed', error: messageOf(error), ...(isCanaryError(error) ? {errorJson: error.toJSON()} : {})}),
    )
    return
  }
  const {id, call} = message
  answer(call).then(
    (result) => {
      send({type: 'reply', id, result})
      if (call.method === 'drain') process.disconnect()
    },
    (error: unknown) => send({type: 'reply', id, error: {message: messageOf(error)}}),
  )
})

send({type: 'hello'})

// The primary is gone (killed or crashed): stop serving so no orphan keeps the port. Closing the
// instance releases every handle, so the process then exits on its own.
process.on('disconnect', () => {
  void instance?.close()
})

// The primary handles signals; a worker ignores SIGINT/SIGHUP sent to the whole process group.
process.on('SIGINT', () => undefined)
process.on('SIGHUP', () => undefined)
