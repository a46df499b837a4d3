// Shared helpers for the proxy benchmark and reliability scripts: free ports, nginx configs,
// starting `canary proxy`, wrk parsing and RSS sampling. Plain Node, no dependencies.
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {basename, dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/**
 * Each benchmark script has its own work folder (configs, nginx pid files, logs), so two of them
 * can run at once (the smoke test runs two at a time) without overwriting each other's nginx.
 */
export const WORK = join(ROOT, 'bench/.work', basename(process.argv[1] ?? 'proxy.js', '.js'))

/** `--smoke`: a run of a few seconds through every code path (CI runs it: test/bench/bench-smoke.test.ts). */
export const SMOKE = process.argv.includes('--smoke')

/** The files `bin/run.js proxy` loads: the CLI bundle, and the worker bundle for `--workers N` (scripts/build.js). */
export const BUILT_FILES = ['dist/cli/canary.cjs', 'dist/cli/boot.cjs', 'dist/proxy/cluster-worker.js']

/** Exits with a clear message unless the tools (nginx, wrk by default) and a built CLI are present. */
export function checkTools(tools = ['nginx', 'wrk']) {
  const packages = {nginx: 'nginx-light', wrk: 'wrk'}
  const missing = tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
  if (missing.length > 0) {
    console.error(`missing: ${missing.join(', ')}. Install them with: apt-get update && apt-get install -y ${missing.map((t) => packages[t] ?? t).join(' ')}`)
    process.exit(2)
  }
  const unbuilt = BUILT_FILES.filter((file) => !existsSync(join(ROOT, file)))
  if (unbuilt.length > 0) {
    console.error(`the built CLI is missing (${unbuilt.join(', ')}): run \`npm run build\` first.`)
    process.exit(2)
  }
  mkdirSync(join(WORK, 'logs'), {recursive: true})
  mkdirSync(join(WORK, 'run'), {recursive: true})
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolvePort(port))
    })
  })
}

/** Upstream nginx: two server blocks answering v1 / v2. */
export function upstreamNginxConf(port1, port2) {
  return `worker_processes auto;
pid run/upstream-nginx.pid;
error_log logs/upstream-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type text/plain;
  client_body_temp_path run/body; proxy_temp_path run/proxy; fastcgi_temp_path run/fcgi; uwsgi_temp_path run/uwsgi; scgi_temp_path run/scgi;
  server { listen 127.0.0.1:${port1} backlog=4096; location / { return 200 "v1\\n"; } }
  server { listen 127.0.0.1:${port2} backlog=4096; location / { return 200 "v2\\n"; } }
}
`
}

/**
 * Reference nginx proxy with the same 80/20 split (the reference configuration); with
 * `tls` it terminates TLS with HTTP/2 and HTTP/1.1 via ALPN (bench/proxy-tls.js).
 */
export function proxyNginxConf(listenPort, port1, port2, {name = 'proxy-nginx', tls} = {}) {
  const listen = tls === undefined
    ? `listen 127.0.0.1:${listenPort} backlog=4096;`
    : `listen 127.0.0.1:${listenPort} ssl http2 backlog=4096;
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_requests 1000000;`
  return `worker_processes auto;
pid run/${name}.pid;
error_log logs/${name}-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path run/body; proxy_temp_path run/proxy; fastcgi_temp_path run/fcgi; uwsgi_temp_path run/uwsgi; scgi_temp_path run/scgi;
  upstream canary {
    server 127.0.0.1:${port1} weight=4;
    server 127.0.0.1:${port2} weight=1;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    ${listen}
    location / {
      proxy_pass http://canary;
      proxy_http_version 1.1;
      proxy_set_header Connection "";${tls === undefined ? '' : '\n      proxy_set_header X-Forwarded-Proto https;'}
    }
  }
}
`
}

export function startNginx(name, conf) {
  const file = join(WORK, `${name}.conf`)
  writeFileSync(file, conf)
  const result = spawnSync('nginx', ['-p', `${WORK}/`, '-c', file], {encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`nginx ${name}: start failed: ${result.stderr}`)
  const pid = Number(readFileSync(join(WORK, `run/${name}.pid`), 'utf8').trim())
  return {
    pid,
    stop() {
      spawnSync('nginx', ['-p', `${WORK}/`, '-c', file, '-s', 'quit'])
    },
  }
}

/** canary proxy config for the benchmark: metrics always on, access log on (to a file). */
export function canaryConfig({listenPort, adminPort, upstreams, accessLog = true, extra = ''}) {
  return `listen: 127.0.0.1:${listenPort}
admin: { listen: 127.0.0.1:${adminPort} }
${accessLog ? `accessLog: { path: ${join(WORK, `logs/access-${listenPort}.log`)} }\n` : ''}${extra}routes:
  - { name: bench, pathPrefix: /, service: app }
services:
  app:
    versions:
${upstreams.map((u) => `      - { name: ${u.name}, weight: ${u.weight}, servers: [${u.servers.join(', ')}] }`).join('\n')}
    canary: v2
`
}

/** Starts `node bin/run.js proxy` and resolves once it printed its listening line. */
export function startCanary(configFile, workers = 1) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/run.js'), 'proxy', '--config', configFile, '--workers', String(workers)], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    // Generous: on a loaded 2-core machine starting the CLI alone has taken over 20 s.
    const timer = setTimeout(() => reject(new Error(`canary proxy did not start in 60 s: ${err}`)), 60_000)
    child.stdout.on('data', (chunk) => {
      out += chunk
      const line = out.split('\n').find((l) => l.includes('"listening"'))
      if (line !== undefined) {
        clearTimeout(timer)
        resolveStart({child, info: JSON.parse(line), stderr: () => err})
      }
    })
    child.stderr.on('data', (chunk) => (err += chunk))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`canary proxy exited with ${code}: ${err}`))
    })
  })
}

export function stopChild(child, signal = 'SIGTERM') {
  return new Promise((resolveStop) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolveStop()
    child.once('exit', () => resolveStop())
    child.kill(signal)
  })
}

/** Runs wrk and parses requests/s, latency percentiles and errors. */
export function runWrk(url, {threads = 2, connections = 64, seconds = 10, onTick} = {}) {
  return new Promise((resolveRun) => {
    const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    const tick = onTick === undefined ? undefined : setInterval(onTick, 500)
    child.once('exit', () => {
      if (tick !== undefined) clearInterval(tick)
      resolveRun(parseWrk(out))
    })
  })
}

export function parseWrk(text) {
  const number = (re) => {
    const m = re.exec(text)
    return m === null ? 0 : Number(m[1])
  }
  const latency = (label) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text)
    if (m === null) return NaN
    const v = Number(m[1])
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  return {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    requests: number(/(\d+) requests in/),
    p50: latency('50'),
    p99: latency('99'),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket === null ? 0 : socket.slice(1).reduce((a, b) => a + Number(b), 0),
    raw: text,
  }
}

/** The pids of a process and its descendants. */
export function processTree(pid) {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim()
        if (children !== '') pids.push(...children.split(/\s+/).map(Number))
      }
    } catch {
      // The process exited; ignore it.
    }
  }
  return pids
}

export function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) / 1024
  } catch {
    return 0
  }
}

export function median(values) {
  const sorted = [...values].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export async function adminFetch(adminUrl, path, init = {}) {
  const response = await fetch(adminUrl + path, init)
  const text = await response.text()
  return {status: response.status, body: text.startsWith('{') ? JSON.parse(text) : text}
}

/** CPU seconds (user + system) used so far by a process tree, from /proc. */
export function cpuSeconds(pid) {
  let ticks = 0
  for (const p of processTree(pid)) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // The process exited; ignore it.
    }
  }
  return ticks / 100
}
