/**
 * Application "pods" on the harness's pod network: a process started inside one of the network
 * namespaces, and the Service's EndpointSlice that points at it (the EndpointSlice controller's
 * job in a full cluster, done here for the pods the caller actually runs).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import http from 'node:http'
import {join} from 'node:path'

import {REPO} from './toolchain.js'

export interface Pod {
  readonly netns: string
  readonly ip: string
}

/** A process running inside a pod's network namespace. */
export interface PodProcess {
  readonly child: ChildProcess
  readonly output: () => string
  stop(): Promise<void>
}

/** Runs `command` inside the pod's network namespace; resolves once `readyLine` appears in its output. */
export function runInPod(pod: Pod, command: string, args: readonly string[], readyLine: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<PodProcess> {
  const child = spawn('ip', ['netns', 'exec', pod.netns, command, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8')
      if (readyLine.test(output)) resolve({child, output: () => output, stop})
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${command} in ${pod.netns} exited (${code}) before it was ready:\n${output}`)))
    child.once('error', reject)
  })
}

/** The suite's application: answers with its version name; `errorPercent` of answers are 500s. */
export function startBackend(pod: Pod, name: string, options: {port?: number; errorPercent?: number} = {}): Promise<PodProcess> {
  const port = options.port ?? 8080
  return runInPod(pod, process.execPath, [join(REPO, 'scripts/cluster/backend.js'), '--name', name, '--port', String(port), '--error-percent', String(options.errorPercent ?? 0)], /listening/)
}

/**
 * The EndpointSlice of Service `service` listing `ips` (ready, serving). Traefik matches slice
 * ports to Service ports by name, so the port is named like the Service's (`http` by default).
 */
export function endpointSlice(namespace: string, service: string, ips: readonly string[], port = 8080, portName = 'http'): string {
  return JSON.stringify({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {name: `${service}-pods`, namespace, labels: {'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'canary-cluster-harness'}},
    addressType: 'IPv4',
    ports: [{name: portName, port, protocol: 'TCP'}],
    endpoints: ips.map((ip) => ({addresses: [ip], conditions: {ready: true, serving: true, terminating: false}})),
  })
}

/** One GET with the given headers (fetch cannot set `Host`, which is how Traefik picks the route). */
export function getThrough(url: string, headers: Readonly<Record<string, string>>, agent?: http.Agent): Promise<{status: number; headers: http.IncomingHttpHeaders; body: string}> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, {headers, agent}, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({status: response.statusCode ?? 0, headers: response.headers, body}))
      response.on('error', reject)
    })
    request.on('error', reject)
  })
}
