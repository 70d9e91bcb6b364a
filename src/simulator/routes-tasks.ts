import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { TSchema } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { GENERATE_PATH, UPSCALE_PATH, VARY_PATH } from './calls.js'
import { FAULT_ANSWERS } from './faults.js'
import { generateRefusal, type GenerateBody } from './generate-rules.js'
import {
  ErrorEnvelopeSchema, GenerateBodySchema, TaskIdEnvelopeSchema, UpscaleBodySchema, VaryBodySchema,
  type UpscaleBody, type VaryBody
} from './schemas.js'
import { answerWith, fail, ok, type Answer } from './scripted.js'
import type { Simulator } from './state.js'
import type { ScriptedEndpoint, SimTask } from './types.js'

const RATE_LIMITED = (sim: Simulator): Answer => fail(429,
  `Rate limit exceeded: at most ${sim.config.rateLimitMax} new tasks per ${sim.config.rateLimitWindowMs} ms`, 429)
const NO_CREDITS = fail(402, 'Insufficient credits. Please top up your account.')

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The front half every task-creating request shares: rate limit (by arrival time), body shape, schema. */
function checkNewTask(sim: Simulator, request: FastifyRequest): Answer | null {
  if (!sim.admitNewTask(sim.callOf(request)?.at ?? Date.now())) return RATE_LIMITED(sim)
  if (!isObject(request.body)) return fail(400, 'Request body must be a JSON object')
  if (request.validationError !== undefined) return fail(422, `Validation failed: ${request.validationError.message}`)
  return null
}

/** The back half: one credit, then the task; the call records which task it made. */
function billAndCreate(sim: Simulator, request: FastifyRequest, create: () => SimTask): Answer {
  if (sim.credits < 1) return NO_CREDITS
  sim.credits -= 1
  const { id } = create()
  const call = sim.callOf(request)
  if (call !== undefined) call.taskId = id
  return ok({ taskId: id })
}

function generate(sim: Simulator, request: FastifyRequest): Answer {
  const rejected = checkNewTask(sim, request)
  if (rejected !== null) return rejected
  const body = request.body as Record<string, unknown>
  const refusal = generateRefusal(body)
  if (refusal !== null) return fail(422, refusal)
  return billAndCreate(sim, request, () => sim.createGenerateTask(body as GenerateBody))
}

/** A vary or an upscale: both start from one image of a finished four-image grid. */
function fromGrid(sim: Simulator, request: FastifyRequest, create: (parent: SimTask, body: UpscaleBody) => SimTask): Answer {
  const rejected = checkNewTask(sim, request)
  if (rejected !== null) return rejected
  const body = request.body as UpscaleBody
  const parent = sim.tasks.get(body.taskId)
  // an upscale's single image is no grid: kie.ai does not know it as a parent
  if (parent === undefined || parent.type === 'upscale') return fail(422, 'record does not exist: taskId is not a generate or vary task')
  if (parent.state !== 'success') return fail(422, `parent task is not finished successfully (successFlag ${parent.successFlag})`)
  return billAndCreate(sim, request, () => create(parent, body))
}

const vary = (sim: Simulator, request: FastifyRequest): Answer =>
  fromGrid(sim, request, (parent, body: VaryBody) => sim.createVaryTask(parent, body))
const upscale = (sim: Simulator, request: FastifyRequest): Answer =>
  fromGrid(sim, request, (parent, body) => sim.createUpscaleTask(parent, body))

interface TaskRoute { path: string, endpoint: ScriptedEndpoint, body: TSchema, handle: (sim: Simulator, request: FastifyRequest) => Answer }

const ROUTES: readonly TaskRoute[] = [
  { path: GENERATE_PATH, endpoint: 'generate', body: GenerateBodySchema, handle: generate },
  { path: VARY_PATH, endpoint: 'generateVary', body: VaryBodySchema, handle: vary },
  { path: UPSCALE_PATH, endpoint: 'generateUpscale', body: UpscaleBodySchema, handle: upscale }
]

/** The three task-creating endpoints, each answering through its script queue and the chaos faults. */
export const taskRoutes: FastifyPluginAsyncTypebox<{ sim: Simulator }> = async (app, { sim }) => {
  const errors = { 400: ErrorEnvelopeSchema, 401: ErrorEnvelopeSchema, 429: ErrorEnvelopeSchema }
  for (const route of ROUTES) {
    app.post(route.path, {
      schema: { body: route.body, response: { 200: TaskIdEnvelopeSchema, ...errors } },
      attachValidation: true
    }, async (request, reply) => {
      const script = sim.takeScript(route.endpoint)
      // scripted answers take precedence over chaos, whose faults strike every task-creating request alike
      const fault = script === undefined ? sim.pickUpscaleFault() : null
      const call = sim.callOf(request)
      if (call !== undefined) call.fault = fault
      const forced = script ?? (fault === null ? undefined : FAULT_ANSWERS[fault])
      return await answerWith(request, reply, forced, () => route.handle(sim, request))
    })
  }
}
