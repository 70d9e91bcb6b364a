import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { CreditEnvelopeSchema, ErrorEnvelopeSchema, RecordInfoEnvelopeSchema, RecordInfoQuerySchema } from './schemas.js'
import { answerWith, fail, ok, type Answer } from './scripted.js'
import type { Simulator } from './state.js'

const QUERIES_LIMITED = fail(429, 'Too many requests', 429)

function recordInfo(sim: Simulator, request: FastifyRequest): Answer {
  const { taskId } = request.query as { taskId?: unknown }
  // the limit counts by arrival, not by when the handler runs
  if (!sim.admitStatusQuery(sim.callOf(request)?.at ?? Date.now())) return QUERIES_LIMITED
  if (request.validationError !== undefined || typeof taskId !== 'string') return fail(422, 'taskId is required')
  const task = sim.tasks.get(taskId)
  return task === undefined ? fail(422, 'recordInfo is null') : ok(sim.recordInfoOf(task))
}

/** The read-only endpoints; the task-creating ones are in routes-tasks.ts. */
export const mjRoutes: FastifyPluginAsyncTypebox<{ sim: Simulator }> = async (app, { sim }) => {
  const errors = { 400: ErrorEnvelopeSchema, 401: ErrorEnvelopeSchema, 429: ErrorEnvelopeSchema }

  app.get('/api/v1/mj/record-info', {
    schema: { querystring: RecordInfoQuerySchema, response: { 200: RecordInfoEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => await answerWith(request, reply, sim.takeScript('recordInfo'), () => recordInfo(sim, request)))

  app.get('/api/v1/chat/credit', {
    schema: { response: { 200: CreditEnvelopeSchema, 401: ErrorEnvelopeSchema } }
  }, async () => ({ code: 200, msg: 'success', data: sim.credits }))
}
