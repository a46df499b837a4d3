/**
 * IP allow-list: every CIDR is parsed once into a node:net BlockList at construction (Traefik's
 * ipallowlist validates in New()). Which address to check is a separate, explicit decision:
 * the socket's peer, or an X-Forwarded-For entry when `trustedProxyHops` > 0.
 */
import {BlockList, isIPv4} from 'node:net'

import {ConfigError} from '../errors.js'

/** Answers whether a client address is allowed. */
export interface IpAllowList {
  allows(address: string): boolean
}

export function createIpAllowList(cidrs: readonly string[], subject: string): IpAllowList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address = '', prefix] = cidr.split('/')
    const type = isIPv4(address) ? 'ipv4' : 'ipv6'
    try {
      if (prefix === undefined) list.addAddress(address, type)
      else list.addSubnet(address, Number(prefix), type)
    } catch (error) {
      throw new ConfigError(`${subject}: allow-list entry ${cidr}: parse failed`, [], {cause: error, suggestions: ['Write CIDRs such as 10.0.0.0/8 or ::1/128.']})
    }
  }
  return {
    allows(address: string): boolean {
      const bare = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
      try {
        return list.check(bare, isIPv4(bare) ? 'ipv4' : 'ipv6')
      } catch {
        return false
      }
    },
  }
}

/**
 * The client address: the socket peer, or with `trustedProxyHops` = n the n-th X-Forwarded-For
 * entry from the right (each trusted proxy appended one; Traefik's DepthStrategy). Falls back to the
 * peer when the header is shorter than that.
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trustedProxyHops: number): string {
  if (trustedProxyHops === 0 || forwardedFor === undefined) return peer
  const entries = forwardedFor.split(',')
  const entry = entries[entries.length - trustedProxyHops]
  return entry === undefined ? peer : entry.trim()
}
