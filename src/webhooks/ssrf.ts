import { lookup as systemLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { UnsafeUrlError } from '../errors.js'

// Thrown here; defined with every other error in src/errors.ts.
export { UnsafeUrlError }

type IPv4 = ipaddr.IPv4
type IPv6 = ipaddr.IPv6

/** How host names are resolved: every address, in the resolver's order. */
export type HostLookup = (host: string) => Promise<Array<{ address: string; family: number }>>

export interface SsrfPolicy {
  /** Hosts or IPs (WEBHOOK_ALLOW_HOSTS) that may resolve to internal addresses. */
  allowHosts: ReadonlySet<string>
  /** Sandbox mode lets webhooks reach loopback receivers. */
  allowLoopback: boolean
  /** The system resolver unless given; tests answer for names without asking DNS. */
  lookup?: HostLookup
}


const defaultLookup: HostLookup = (host) => systemLookup(host, { all: true, verbatim: true })

const v4At = (parts: readonly number[], i: number, mask = 0): IPv4 => {
  const hi = (parts[i] ?? 0) ^ (mask >>> 16)
  const lo = (parts[i + 1] ?? 0) ^ (mask & 0xffff)
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff])
}

/**
 * The IPv4 addresses an IPv6 address carries. Traffic to such an address ends at (or passes
 * through) that IPv4 address (a NAT64 translator or 6to4 relay forwards it there), so an
 * internal one hidden in hex (`64:ff9b::a9fe:a9fe` is 169.254.169.254) must be refused too.
 */
function embeddedIpv4(a: IPv6): IPv4[] {
  const p = a.parts
  switch (a.range()) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d
    case 'rfc6145': // ::ffff:0:a.b.c.d, IPv4-translated (SIIT)
    case 'rfc6052': // NAT64: 64:ff9b::/96 and local-use 64:ff9b:1::/48, in the /96 layout
      return [v4At(p, 6)]
    case '6to4': // 2002:AABB:CCDD::/48
      return [v4At(p, 1)]
    case 'teredo': // 2001:0:server:flags:port:client, the client inverted bit by bit
      return [v4At(p, 2), v4At(p, 6, 0xffffffff)]
    case 'unicast': // IPv4-compatible ::a.b.c.d: deprecated, still routed as IPv4 by some stacks
      return p.slice(0, 6).every((x) => x === 0) ? [v4At(p, 6)] : []
    default:
      return []
  }
}

/**
 * Why an address is refused, or null when it may be reached. Only ipaddr.js's `unicast` range
 * is allowed (no private, loopback, link-local, unique-local, CGNAT, multicast, reserved,
 * documentation...); an IPv6 address carrying an IPv4 one is judged by every IPv4 it carries.
 */
function refusal(address: string, policy: Pick<SsrfPolicy, 'allowLoopback'>): string | null {
  // Only canonical literals (what the URL parser and the resolver produce); ipaddr.js alone
  // would also read forms such as 0x7f.1 that other code may read differently.
  if (!isIP(address)) return 'is not an IP address'
  let ip: IPv4 | IPv6
  try {
    ip = ipaddr.parse(address)
  } catch {
    return 'is not an IP address'
  }
  const range = ip.range()
  if (ip.kind() === 'ipv4') {
    if (range === 'unicast' || (policy.allowLoopback && range === 'loopback')) return null
    return `is ${range}`
  }
  const v6 = ip as IPv6
  const carried = embeddedIpv4(v6)
  // ::ffff:127.0.0.1 is this host's loopback (a dual-stack socket); 64:ff9b::7f00:1 and the
  // like are someone else's, so they stay refused even in sandbox mode.
  if (policy.allowLoopback && (range === 'loopback' || (range === 'ipv4Mapped' && carried[0]?.range() === 'loopback'))) return null
  if (carried.length === 0) return range === 'unicast' ? null : `is ${range}`
  for (const v4 of carried) {
    if (v4.range() !== 'unicast') return `carries ${v4.toString()} (${v4.range()})`
  }
  return null
}

export function isBlockedAddress(address: string, policy: Pick<SsrfPolicy, 'allowLoopback'>): boolean {
  return refusal(address, policy) !== null
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
 * One spelling per address: `64:ff9b::10.0.0.5` in WEBHOOK_ALLOW_HOSTS is what the URL parser
 * writes as `64:ff9b::a00:5`, and must match it.
 */
function canonical(host: string): string {
  try {
    if (isIP(host)) return ipaddr.parse(host).toNormalizedString()
  } catch {
    // A literal ipaddr.js cannot read (an odd zone id) is compared as written.
  }
  return host.toLowerCase()
}

function isAllowedHost(policy: SsrfPolicy, host: string): boolean {
  if (policy.allowHosts.has(host)) return true
  const wanted = canonical(host)
  for (const h of policy.allowHosts) if (canonical(h) === wanted) return true
  return false
}

/**
 * Resolves the URL's host and returns an address that is safe to connect to; every address
 * the name resolves to must be safe (a name with one private address is refused). Callers
 * connect to the address returned, never to the name, so a second lookup cannot differ.
 */
export async function resolveSafe(url: URL, policy: SsrfPolicy): Promise<{ address: string; family: 4 | 6 }> {
  const host = hostOf(url)
  const allowed = isAllowedHost(policy, host)
  let addresses: Array<{ address: string; family: number }>
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }]
  else {
    try {
      addresses = await (policy.lookup ?? defaultLookup)(host)
    } catch {
      throw new UnsafeUrlError(`host ${host} does not resolve`)
    }
  }
  if (addresses.length === 0) throw new UnsafeUrlError(`host ${host} does not resolve`)
  for (const a of addresses) {
    if (allowed || isAllowedHost(policy, a.address)) continue
    const why = refusal(a.address, policy)
    if (!why) continue
    const what = a.address === host ? `address ${host} ${why}` : `host ${host} resolves to ${a.address}, which ${why}`
    throw new UnsafeUrlError(`${what}; only public unicast addresses are allowed`)
  }
  const first = addresses[0] as { address: string; family: number }
  return { address: first.address, family: first.family === 6 ? 6 : 4 }
}
