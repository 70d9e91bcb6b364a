import type { UpscaleFault } from './chaos.js'
import type { ScriptedResponse } from './types.js'

const envelope = (code: number, msg: string): { code: number, msg: string, data: null } => ({ code, msg, data: null })

/**
 * The answer each chaos fault plays instead of the normal one. 'accept-then-hangup' runs
 * the normal path first, so the task is made (and billed) as usual.
 */
export const FAULT_ANSWERS: Record<UpscaleFault, ScriptedResponse> = {
  // the message tells a simulated rate limit from the simulator's own new-task limiter
  http429: { httpStatus: 429, body: envelope(429, 'Rate limit exceeded (simulated)') },
  code455: { httpStatus: 200, body: envelope(455, 'Service unavailable') },
  http500: { httpStatus: 500, body: envelope(500, 'Internal Server Error') },
  nonJson: { httpStatus: 502, raw: '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>' },
  acceptThenHangup: 'accept-then-hangup',
  stall: 'stall'
}
