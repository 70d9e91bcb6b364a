import { hash, timingSafeEqual } from 'node:crypto'

// One-shot hashing: no Hash object per call.
const digest = (s: string) => hash('sha256', s, 'buffer')

/**
 * The one constant-time comparison of secrets (client keys, the metrics token, callback tokens,
 * kie.ai signatures): equal-length digests, so neither the content nor the length leaks.
 */
export function safeEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}

/**
 * The same comparison against a fixed set of secrets (the client keys): each secret is hashed
 * once, up front, and the given one once per check; every entry is compared, match or not, so
 * the time says nothing about which entry matched or how close a guess came.
 */
export function secretLookup<T>(entries: readonly T[], secretOf: (entry: T) => string): (given: string) => T | null {
  const known = entries.map((entry) => ({ entry, digest: digest(secretOf(entry)) }))
  return (given) => {
    const g = digest(given)
    let found: T | null = null
    for (const k of known) if (timingSafeEqual(g, k.digest)) found = k.entry
    return found
  }
}
