import { createHmac } from 'node:crypto'

/** base64(HMAC-SHA256(key, taskId + "." + timestamp)), as kie.ai signs its callbacks. */
export function signKieCallback (key: string, taskId: string, timestamp: string | number): string {
  return createHmac('sha256', key).update(`${taskId}.${timestamp}`).digest('base64')
}
