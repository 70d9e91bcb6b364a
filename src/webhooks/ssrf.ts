import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

// Addresses a webhook must never reach: private, loopback, link-local (cloud metadata at
// 169.254.169.254 and fd00:ec2::254), unique-local, CGNAT, multicast, reserved, documentation.
const blocked = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) blocked.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['100::', 64], ['2001:db8::', 32]
] as const) blocked.addSubnet(net, bits, 'ipv6')

const loopback = new BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

export interface SsrfPolicy {
  /** Hosts or IPs (WEBHOOK_ALLOW_HOSTS) that may resolve to internal addresses. */
  allowHosts: ReadonlySet<string>
  /** Sandbox mode lets webhooks reach loopback receivers. */
  allowLoopback: boolean
}

export class UnsafeUrlError extends Error {}

/** IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address inside them. */
function embeddedIpv4(address: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  return m ? (m[1] as string) : null
}

export function isBlockedAddress(address: string, policy: Pick<SsrfPolicy, 'allowLoopback'>): boolean {
  const v4 = embeddedIpv4(address)
  const [addr, family] = v4 ? [v4, 'ipv4' as const] : [address, isIP(address) === 6 ? ('ipv6' as const) : ('ipv4' as const)]
  if (policy.allowLoopback && loopback.check(addr, family)) return false
  return blocked.check(addr, family)
}

/** Checks a client-supplied URL's form; the address check needs `resolveSafe`. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new UnsafeUrlError('is not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UnsafeUrlError('must use http or https')
  if (url.username || url.password) throw new UnsafeUrlError('must not carry credentials')
  return url
}

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '').toLowerCase()

/**
 * Resolves the URL's host and returns an address that is safe to connect to; every address
 * the name resolves to must be safe (a name with one private address is refused).
 */
export async function resolveSafe(url: URL, policy: SsrfPolicy): Promise<{ address: string; family: 4 | 6 }> {
  const host = hostOf(url)
  const allowed = policy.allowHosts.has(host)
  let addresses: Array<{ address: string; family: number }>
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }]
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true })
    } catch {
      throw new UnsafeUrlError(`host ${host} does not resolve`)
    }
  }
  if (addresses.length === 0) throw new UnsafeUrlError(`host ${host} does not resolve`)
  for (const a of addresses) {
    if (!allowed && !policy.allowHosts.has(a.address) && isBlockedAddress(a.address, policy)) {
      throw new UnsafeUrlError(`resolves to ${a.address}, a private or reserved address`)
    }
  }
  const first = addresses[0] as { address: string; family: number }
  return { address: first.address, family: first.family === 6 ? 6 : 4 }
}
