import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * The one constant-time comparison of secrets (client keys, the metrics token, callback tokens,
 * kie.ai signatures): equal-length digests, so neither the content nor the length leaks.
 */
export function safeEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}
