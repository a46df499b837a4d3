import {describe, expect, it} from 'vitest'

import {ServerHealth, UpstreamServer} from '../../src/proxy/runtime.js'

function server(): UpstreamServer {
  // The pool is not used by health bookkeeping.
  return new UpstreamServer('http://127.0.0.1:1', 'http://127.0.0.1:1', '', undefined as never, undefined as never, new ServerHealth(), 60_000)
}

describe('passive health', () => {
  it('takes a server out at once when a connect fails', () => {
    const s = server()
    s.markFailed(true)
    expect(s.healthy).toBe(false)
  })

  it('needs three resets in a row, so one keep-alive race does not bench a healthy server', () => {
    const s = server()
    s.markFailed(false)
    s.markFailed(false)
    expect(s.healthy).toBe(true)
    s.markSucceeded()
    s.markFailed(false)
    s.markFailed(false)
    expect(s.healthy).toBe(true)
    s.markFailed(false)
    expect(s.healthy).toBe(false)
  })

  it('brings the server back after the cooldown', () => {
    const s = new UpstreamServer('http://127.0.0.1:1', 'http://127.0.0.1:1', '', undefined as never, undefined as never, new ServerHealth(), 0)
    s.markFailed(true)
    expect(s.healthy).toBe(true)
  })
})
