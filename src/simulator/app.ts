import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Chaos } from './chaos.js'
import { mjRoutes } from './routes-mj.js'
import { taskRoutes } from './routes-tasks.js'
import { fileRoutes } from './routes-files.js'
import { bearerMatches } from './sign.js'
import { Simulator, type ApiCall } from './state.js'
import type { Variants } from './variants.js'

export interface SimulatorOptions {
  /** the bearer token accepted on /api/* */
  apiKey: string
  /** when set, callbacks carry X-Webhook-Timestamp / X-Webhook-Signature */
  hmacKey?: string
  completionDelayMs?: number
  /** multiplies the 1, 5 and 15 minute callback retry delays */
  callbackRetryScale?: number
  /** how long a callback receiver has to answer; kie.ai allows 15 s */
  callbackTimeoutMs?: number
  /** new-task requests (generate, generateVary, generateUpscale together) allowed per rateLimitWindowMs; default 20 per 10 s */
  rateLimitMax?: number
  rateLimitWindowMs?: number
  /** GET record-info requests allowed in any sliding 1 s window (default 10); Infinity disables */
  queryRateLimitPerSecond?: number
  /** initial chaos switches (all off by default); sim.chaos can be changed later */
  chaos?: Partial<Chaos>
  /** initial variants (which documented form each answer takes); sim.variants can be changed later */
  variants?: Partial<Variants>
  /** makes the chaos randomness deterministic; default Math.random */
  seed?: number
  credits?: number
  /** base for result file URLs; default the listen URL */
  publicUrl?: string
  logger?: Logger | boolean
}

export interface RunningSimulator {
  url: string
  sim: Simulator
  close: () => Promise<void>
}

const UNAUTHORIZED = { code: 401, msg: 'You do not have access permissions', data: null }

function codeOf(payload: unknown): number | null {
  if (typeof payload !== 'string') return null
  try {
    const parsed: unknown = JSON.parse(payload)
    const code = (parsed as { code?: unknown } | null)?.code
    return typeof code === 'number' ? code : null
  } catch {
    return null
  }
}

/** The kie.ai simulator as a Fastify app ready for inject() or listen(). */
export function buildSimulator(opts: SimulatorOptions): { app: FastifyInstance, sim: Simulator } {
  const base = {
    // a stalled request must not hold up close()
    forceCloseConnections: true,
    // no coercion or stripping: "1" is not an imageIndex, and promptJson echoes the body as sent
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } }
  } as const
  const app = (typeof opts.logger === 'object'
    ? Fastify({ ...base, loggerInstance: opts.logger })
    : Fastify({ ...base, logger: opts.logger ?? false })) as unknown as FastifyInstance

  const sim = new Simulator({
    hmacKey: opts.hmacKey,
    completionDelayMs: opts.completionDelayMs ?? 1500,
    callbackRetryScale: opts.callbackRetryScale ?? 1,
    callbackTimeoutMs: opts.callbackTimeoutMs ?? 15_000,
    rateLimitMax: opts.rateLimitMax ?? 20,
    rateLimitWindowMs: opts.rateLimitWindowMs ?? 10_000,
    queryRateLimitPerSecond: opts.queryRateLimitPerSecond ?? 10,
    credits: opts.credits ?? 10_000,
    publicUrl: (opts.publicUrl ?? 'http://127.0.0.1').replace(/\/+$/, ''),
    seed: opts.seed,
    chaos: opts.chaos,
    variants: opts.variants
  }, app.log)

  const calls = (request: FastifyRequest): ApiCall | undefined => sim.callOf(request)
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/api/')) return
    const url = new URL(request.url, 'http://sim')
    const call: ApiCall = {
      at: Date.now(),
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      httpStatus: 0,
      code: null,
      taskId: null,
      fault: null
    }
    sim.trackCall(request, call)
    // kie.ai documents HTTP 200 with code 401 in the body; some endpoints are seen to answer a real 401
    if (!bearerMatches(request.headers.authorization, opts.apiKey)) {
      return await reply.code(sim.variants.authFailureHttpStatus).send(UNAUTHORIZED)
    }
  })
  app.addHook('preValidation', async (request) => {
    const call = calls(request)
    if (call !== undefined) call.body = request.body
  })
  app.addHook('onSend', async (request, reply, payload) => {
    const call = calls(request)
    if (call !== undefined) {
      call.httpStatus = reply.statusCode
      call.code = codeOf(payload)
    }
    return payload
  })

  app.setErrorHandler(async (err: { statusCode?: number, message: string }, request, reply) => {
    const status = err.statusCode ?? 500
    if (status < 500) return await reply.code(200).send({ code: 400, msg: err.message, data: null })
    request.log.error({ err }, 'simulator: unexpected error')
    return await reply.code(500).send({ code: 500, msg: 'Internal Server Error', data: null })
  })
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ code: 404, msg: 'Not Found', data: null }))

  app.register(taskRoutes, { sim })
  app.register(mjRoutes, { sim })
  app.register(fileRoutes, { sim })
  app.addHook('onClose', async () => { sim.close() })
  return { app, sim }
}

function urlOf(address: AddressInfo | string | null): string {
  if (address === null || typeof address === 'string') throw new Error('simulator is not listening on TCP')
  const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.address
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

/** Build and listen; the result URLs point at the listen address unless publicUrl says otherwise. */
export async function startSimulator(opts: SimulatorOptions & { host?: string, port?: number }): Promise<RunningSimulator> {
  const { app, sim } = buildSimulator(opts)
  try {
    await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 })
  } catch (err) {
    await app.close()
    throw err
  }
  const url = urlOf(app.server.address())
  if (opts.publicUrl === undefined) sim.publicUrl = url
  return { url, sim, close: async () => { await app.close() } }
}
