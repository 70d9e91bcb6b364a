import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import {
  CreditEnvelopeSchema, ErrorEnvelopeSchema, GenerateBodySchema, RecordInfoEnvelopeSchema,
  RecordInfoQuerySchema, TaskIdEnvelopeSchema, UpscaleBodySchema, type GenerateBody, type UpscaleBody
} from './schemas.js'
import { hangUp, playScript } from './scripted.js'
import type { Simulator } from './state.js'
import { toRecordInfo } from './views.js'

interface Answer { httpStatus: number, body: { code: number, msg: string, data: unknown } }

const ok = (data: unknown): Answer => ({ httpStatus: 200, body: { code: 200, msg: 'success', data } })
// kie.ai reports business errors in the body of an HTTP 200
const fail = (code: number, msg: string, httpStatus = 200): Answer => ({ httpStatus, body: { code, msg, data: null } })
const RATE_LIMITED = (sim: Simulator): Answer => fail(429,
  `Rate limit exceeded: at most ${sim.config.rateLimitMax} new tasks per ${sim.config.rateLimitWindowMs} ms`, 429)

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Shared front half of the two task-creating endpoints: rate limit, body shape, schema. */
function checkNewTask (sim: Simulator, request: FastifyRequest): Answer | null {
  if (!sim.admitNewTask()) return RATE_LIMITED(sim)
  if (!isObject(request.body)) return fail(400, 'Request body must be a JSON object')
  if (request.validationError !== undefined) return fail(422, `Validation failed: ${request.validationError.message}`)
  return null
}

function generate (sim: Simulator, request: FastifyRequest): Answer {
  const rejected = checkNewTask(sim, request)
  if (rejected !== null) return rejected
  const task = sim.createGenerateTask(request.body as GenerateBody)
  return ok({ taskId: task.id })
}

function upscale (sim: Simulator, request: FastifyRequest): Answer {
  const rejected = checkNewTask(sim, request)
  if (rejected !== null) return rejected
  const body = request.body as UpscaleBody
  const parent = sim.tasks.get(body.taskId)
  if (parent === undefined || parent.type !== 'generate') return fail(422, 'record does not exist: taskId is not a generation task')
  if (parent.state !== 'success') return fail(422, `parent task is not finished successfully (successFlag ${parent.successFlag})`)
  if (sim.credits < 1) return fail(402, 'Insufficient credits. Please top up your account.')
  sim.credits -= 1
  const task = sim.createUpscaleTask(parent, body)
  return ok({ taskId: task.id })
}

function recordInfo (sim: Simulator, request: FastifyRequest): Answer {
  const { taskId } = request.query as { taskId?: unknown }
  if (request.validationError !== undefined || typeof taskId !== 'string') return fail(422, 'taskId is required')
  const task = sim.tasks.get(taskId)
  return task === undefined ? fail(422, 'recordInfo is null') : ok(toRecordInfo(task))
}

export const mjRoutes: FastifyPluginAsyncTypebox<{ sim: Simulator }> = async (app, { sim }) => {
  const errors = { 400: ErrorEnvelopeSchema, 401: ErrorEnvelopeSchema, 429: ErrorEnvelopeSchema }

  app.post('/api/v1/mj/generate', {
    schema: { body: GenerateBodySchema, response: { 200: TaskIdEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => {
    const answer = generate(sim, request)
    return await reply.code(answer.httpStatus).send(answer.body as never)
  })

  app.post('/api/v1/mj/generateUpscale', {
    schema: { body: UpscaleBodySchema, response: { 200: TaskIdEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => {
    const script = sim.takeScript('generateUpscale')
    if (script !== undefined && script !== 'accept-then-hangup') return await playScript(request, reply, script)
    const answer = upscale(sim, request)
    if (script === 'accept-then-hangup') return hangUp(request, reply)
    return await reply.code(answer.httpStatus).send(answer.body as never)
  })

  app.get('/api/v1/mj/record-info', {
    schema: { querystring: RecordInfoQuerySchema, response: { 200: RecordInfoEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => {
    const script = sim.takeScript('recordInfo')
    if (script !== undefined && script !== 'accept-then-hangup') return await playScript(request, reply, script)
    const answer = recordInfo(sim, request)
    if (script === 'accept-then-hangup') return hangUp(request, reply)
    return await reply.code(answer.httpStatus).send(answer.body as never)
  })

  app.get('/api/v1/chat/credit', {
    schema: { response: { 200: CreditEnvelopeSchema, 401: ErrorEnvelopeSchema } }
  }, async () => ({ code: 200, msg: 'success', data: sim.credits }))
}
