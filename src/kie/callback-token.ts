import { createHmac } from 'node:crypto'
import { safeEqual } from '../safe-equal.js'

// The token proves a callback URL was issued by this gateway for this task; it is
// derived, not stored, so rotating CALLBACK_SECRET invalidates the URLs of tasks in flight.
export function callbackToken(secret: string, taskId: string): string {
  return createHmac('sha256', secret).update(`mj-callback:${taskId}`).digest('base64url')
}

export function callbackUrl(publicBaseUrl: string, secret: string, taskId: string): string {
  const q = new URLSearchParams({ task: taskId, token: callbackToken(secret, taskId) })
  return `${publicBaseUrl}/callbacks/mj?${q.toString()}`
}

/** `secrets`: the current one first, then earlier ones still accepted during a rotation. */
export function verifyCallbackToken(secrets: readonly string[], taskId: string, token: string): boolean {
  return secrets.some((secret) => safeEqual(token, callbackToken(secret, taskId)))
}

/**
 * The text with every callback token in a URL replaced by [redacted]: kie.ai echoes the callback
 * URL in its callbacks, and the token in it would let whoever reads the body post callbacks.
 */
export const redactCallbackTokens = (text: string) => text.replace(/([?&]token=)[A-Za-z0-9_-]+/g, '$1[redacted]')
