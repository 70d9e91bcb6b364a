import { timingSafeEqual } from 'node:crypto'

/** Compares secrets in constant time (for strings of equal length; a length differs at once). */
export function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
