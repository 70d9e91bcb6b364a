import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ScriptedResponse } from './types.js'

/** A route's normal answer: kie.ai's envelope with the HTTP status it goes out with. */
export interface Answer { httpStatus: number, body: { code: number, msg: string, data: unknown } }

export const ok = (data: unknown): Answer => ({ httpStatus: 200, body: { code: 200, msg: 'success', data } })
// kie.ai reports business errors in the body of an HTTP 200
export const fail = (code: number, msg: string, httpStatus = 200): Answer => ({ httpStatus, body: { code, msg, data: null } })

/** Drop the connection without a word, the way a crashing upstream or a proxy reset does. */
export function hangUp(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.hijack()
  request.raw.socket.destroy()
  return reply
}

/** Play one forced answer as it is; whether the normal path runs first is answerWith's business. */
export async function playScript(request: FastifyRequest, reply: FastifyReply,
  script: Exclude<ScriptedResponse, 'accept-then-hangup'>): Promise<FastifyReply> {
  if (script === 'hangup') return hangUp(request, reply)
  if (script === 'stall') {
    // The socket stays open until the client gives up; the server's forced close ends it on shutdown.
    reply.hijack()
    return reply
  }
  if (script.delayMs !== undefined && script.delayMs > 0) await sleep(script.delayMs, undefined, { ref: false })
  reply.code(script.httpStatus ?? 200)
  if (script.raw !== undefined) return await reply.type('text/html; charset=utf-8').send(script.raw)
  // A pre-serialised string skips the route's response schema, so any body goes out verbatim.
  return await reply.type('application/json; charset=utf-8').send(JSON.stringify(script.body ?? null))
}

/**
 * Send the normal answer, or the forced one instead. 'accept-then-hangup' and afterCreate answers
 * run the normal path first (its task made exactly as usual) and then discard its answer.
 */
export async function answerWith(request: FastifyRequest, reply: FastifyReply,
  forced: ScriptedResponse | undefined, normal: () => Answer): Promise<FastifyReply> {
  if (forced === undefined) {
    const answer = normal()
    return await reply.code(answer.httpStatus).send(answer.body)
  }
  if (forced === 'accept-then-hangup') {
    normal()
    return hangUp(request, reply)
  }
  if (typeof forced === 'object' && forced.afterCreate === true) normal()
  return await playScript(request, reply, forced)
}
