import type { UpscaleFault } from './chaos.js'
import { cloudflarePage, SERVICE_TEMPORARILY_UNAVAILABLE } from './cdn.js'
import type { ScriptedResponse } from './types.js'

const envelope = (code: number, msg: string): { code: number, msg: string, data: null } => ({ code, msg, data: null })

const cdn = (status: number, afterCreate: boolean): ScriptedResponse => ({ httpStatus: status, raw: cloudflarePage(status), afterCreate })

/**
 * The answer each chaos fault plays instead of the normal one. 'accept-then-hangup' and the
 * afterCreate answers run the normal path first, so the task is made (and billed) as usual.
 */
export const FAULT_ANSWERS: Record<UpscaleFault, ScriptedResponse> = {
  // the message tells a simulated rate limit from the simulator's own new-task limiter
  http429: { httpStatus: 429, body: envelope(429, 'Rate limit exceeded (simulated)') },
  code455: { httpStatus: 200, body: envelope(455, 'Service unavailable') },
  http500: { httpStatus: 500, body: envelope(500, 'Internal Server Error') },
  nonJson: { httpStatus: 502, raw: '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>' },
  acceptThenHangup: 'accept-then-hangup',
  stall: 'stall',
  // seen by public client code for a bad request: kie.ai's own refusal, so nothing was made
  code500Refusal: { httpStatus: 200, body: envelope(500, 'This field is required') },
  // the CDN could not reach the origin: nothing was made
  cdn521: cdn(521, false),
  cdn522: cdn(522, false),
  cdn523: cdn(523, false),
  cdn525: cdn(525, false),
  cdn526: cdn(526, false),
  http503: { httpStatus: 503, raw: SERVICE_TEMPORARILY_UNAVAILABLE },
  // the origin made the task, then the CDN lost or replaced its answer
  cdn502: cdn(502, true),
  cdn504: cdn(504, true),
  cdn520: cdn(520, true),
  cdn524: cdn(524, true)
}
