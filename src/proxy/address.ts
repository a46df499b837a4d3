/**
 * `host:port` listen addresses. Kept apart from config.ts so data-plane workers do not load the
 * config parser (zod, yaml) just to split an address.
 */
import {ConfigError} from '../errors.js'

/** A bound address. */
export interface BoundAddress {
  readonly host: string
  readonly port: number
}

/** `host:port` or `[v6]:port`. */
export const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/

/** True for 127.0.0.0/8, ::1 and localhost: the admin API may run without a token only there. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare)
}

/** Splits `host:port` / `[v6]:port` as written in `listen`. */
export function splitHostPort(value: string): {host: string; port: number} {
  const match = HOST_PORT.exec(value)
  if (match === null) throw new ConfigError(`listen address ${value}: parse failed: expected host:port`)
  const host = match[1] ?? ''
  return {host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(match[2])}
}

/** A host as written before `:port`: IPv6 addresses bracketed. */
export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
