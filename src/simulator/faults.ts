import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UpscaleFault } from './chaos.js'
import { playScript } from './scripted.js'
import type { ScriptedResponse } from './types.js'

const envelope = (code: number, msg: string): { code: number, msg: string, data: null } => ({ code, msg, data: null })

/** The answer each chaos fault plays instead of normal handling ('acceptThenHangup' runs the normal path first). */
export const FAULT_ANSWERS: Record<Exclude<UpscaleFault, 'acceptThenHangup'>, Exclude<ScriptedResponse, 'accept-then-hangup'>> = {
  // the message tells a simulated rate limit from the simulator's own new-task limiter
  http429: { httpStatus: 429, body: envelope(429, 'Rate limit exceeded (simulated)') },
  code455: { httpStatus: 200, body: envelope(455, 'Service unavailable') },
  http500: { httpStatus: 500, body: envelope(500, 'Internal Server Error') },
  nonJson: { httpStatus: 502, raw: '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>' },
  stall: 'stall'
}

export async function playFault (request: FastifyRequest, reply: FastifyReply,
  fault: Exclude<UpscaleFault, 'acceptThenHangup'>): Promise<FastifyReply> {
  return await playScript(request, reply, FAULT_ANSWERS[fault])
}
