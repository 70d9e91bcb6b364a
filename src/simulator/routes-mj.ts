import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import {
  CreditEnvelopeSchema, ErrorEnvelopeSchema, GenerateBodySchema, RecordInfoEnvelopeSchema,
  RecordInfoQuerySchema, TaskIdEnvelopeSchema, UpscaleBodySchema, type GenerateBody, type UpscaleBody
} from './schemas.js'
import { UPSCALE_PATH } from './calls.js'
import { FAULT_ANSWERS } from './faults.js'
import { answerWith, type Answer } from './scripted.js'
import type { Simulator } from './state.js'

const ok = (data: unknown): Answer => ({ httpStatus: 200, body: { code: 200, msg: 'success', data } })
// kie.ai reports business errors in the body of an HTTP 200
const fail = (code: number, msg: string, httpStatus = 200): Answer => ({ httpStatus, body: { code, msg, data: null } })
const RATE_LIMITED = (sim: Simulator): Answer => fail(429,
  `Rate limit exceeded: at most ${sim.config.rateLimitMax} new tasks per ${sim.config.rateLimitWindowMs} ms`, 429)
const QUERIES_LIMITED = fail(429, 'Too many requests', 429)

/** When the request arrived: the rate limits count by arrival, not by when the handler runs. */
const arrivedAt = (sim: Simulator, request: FastifyRequest): number => sim.callOf(request)?.at ?? Date.now()

function created (sim: Simulator, request: FastifyRequest, taskId: string): Answer {
  const call = sim.callOf(request)
  if (call !== undefined) call.taskId = taskId
  return ok({ taskId })
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Shared front half of the two task-creating endpoints: rate limit, body shape, schema. */
function checkNewTask (sim: Simulator, request: FastifyRequest): Answer | null {
  if (!sim.admitNewTask(arrivedAt(sim, request))) return RATE_LIMITED(sim)
  if (!isObject(request.body)) return fail(400, 'Request body must be a JSON object')
  if (request.validationError !== undefined) return fail(422, `Validation failed: ${request.validationError.message}`)
  return null
}

function generate (sim: Simulator, request: FastifyRequest): Answer {
  const rejected = checkNewTask(sim, request)
  if (rejected !== null) return rejected
  return created(sim, request, sim.createGenerateTask(request.body as GenerateBody).id)
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
  return created(sim, request, sim.createUpscaleTask(parent, body).id)
}

function recordInfo (sim: Simulator, request: FastifyRequest): Answer {
  const { taskId } = request.query as { taskId?: unknown }
  if (!sim.admitStatusQuery(arrivedAt(sim, request))) return QUERIES_LIMITED
  if (request.validationError !== undefined || typeof taskId !== 'string') return fail(422, 'taskId is required')
  const task = sim.tasks.get(taskId)
  return task === undefined ? fail(422, 'recordInfo is null') : ok(sim.recordInfoOf(task))
}

export const mjRoutes: FastifyPluginAsyncTypebox<{ sim: Simulator }> = async (app, { sim }) => {
  const errors = { 400: ErrorEnvelopeSchema, 401: ErrorEnvelopeSchema, 429: ErrorEnvelopeSchema }

  app.post('/api/v1/mj/generate', {
    schema: { body: GenerateBodySchema, response: { 200: TaskIdEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => await answerWith(request, reply, undefined, () => generate(sim, request)))

  app.post(UPSCALE_PATH, {
    schema: { body: UpscaleBodySchema, response: { 200: TaskIdEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => {
    const script = sim.takeScript('generateUpscale')
    // scripted answers take precedence over chaos
    const fault = script === undefined ? sim.pickUpscaleFault() : null
    const call = sim.callOf(request)
    if (call !== undefined) call.fault = fault
    const forced = script ?? (fault === null ? undefined : FAULT_ANSWERS[fault])
    return await answerWith(request, reply, forced, () => upscale(sim, request))
  })

  app.get('/api/v1/mj/record-info', {
    schema: { querystring: RecordInfoQuerySchema, response: { 200: RecordInfoEnvelopeSchema, ...errors } },
    attachValidation: true
  }, async (request, reply) => await answerWith(request, reply, sim.takeScript('recordInfo'), () => recordInfo(sim, request)))

  app.get('/api/v1/chat/credit', {
    schema: { response: { 200: CreditEnvelopeSchema, 401: ErrorEnvelopeSchema } }
  }, async () => ({ code: 200, msg: 'success', data: sim.credits }))
}
