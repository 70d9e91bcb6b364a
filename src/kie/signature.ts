import { createHmac } from 'node:crypto'
import { safeEqual } from '../safe-equal.js'

/** kie.ai's callback signature: base64(HMAC-SHA256(key, taskId + "." + timestamp)). */
export function signKieCallback(key: string, taskId: string, timestamp: string | number): string {
  return createHmac('sha256', key).update(`${taskId}.${timestamp}`).digest('base64')
}

export type SignatureVerdict = 'valid' | 'missing' | 'invalid' | 'stale'

export interface SignatureCheck {
  /** The current key first; earlier ones are accepted while kie.ai's key is being rotated. */
  keys: readonly string[]
  taskId: string
  timestamp: string | undefined
  signature: string | undefined
  nowMs: number
  /** kie.ai retries up to 21 minutes late and may not re-sign, so the window must cover that. */
  maxAgeMs: number
  maxSkewMs?: number
}

export function verifyKieSignature(c: SignatureCheck): SignatureVerdict {
  if (!c.timestamp || !c.signature) return 'missing'
  if (!/^\d{1,12}$/.test(c.timestamp)) return 'invalid'
  const match = c.keys.some((key) => safeEqual(c.signature as string, signKieCallback(key, c.taskId, c.timestamp as string)))
  if (!match) return 'invalid'
  const ageMs = c.nowMs - Number(c.timestamp) * 1000
  if (ageMs > c.maxAgeMs || ageMs < -(c.maxSkewMs ?? 5 * 60_000)) return 'stale'
  return 'valid'
}
