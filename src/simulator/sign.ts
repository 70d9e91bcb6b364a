import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

// The simulator's own copies of kie.ai's rules (kie-api.md), written apart from the gateway's:
// if both sides shared one implementation, a mistake in it would agree with itself and no test would notice.

/** kie.ai's callback signature: standard base64 (with padding) of HMAC-SHA256(key, taskId + "." + timestamp). */
export function signKieCallback(key: string, taskId: string, timestamp: string | number): string {
  return createHmac('sha256', key).update(`${taskId}.${String(timestamp)}`).digest('base64')
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/** Constant-time comparison: hashing first gives equal-length buffers, so not even the length leaks. */
export function secretEquals(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected))
}

/** Whether an Authorization header carries exactly `Bearer <apiKey>`. */
export const bearerMatches = (header: string | undefined, apiKey: string): boolean =>
  secretEquals(header ?? '', `Bearer ${apiKey}`)
