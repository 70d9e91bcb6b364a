import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { validatorCompiler } from '../plugins/validation.js'
import { kieCallbackExample } from '../openapi-examples.js'
import { Type } from '@sinclair/typebox'
import { CallbackUnauthorizedError, ErrorResponseSchema, NotFoundError } from '../errors.js'
import type { CallbackDelivery, CallbackEffect, Outcome } from '../db/repository.js'
import { verifyCallbackToken } from '../kie/callback-token.js'
import { parseCallback } from '../kie/callback-payload.js'
import { verifyKieSignature } from '../kie/signature.js'
import type { Clock } from '../clock.js'
import type { Repository } from '../db/repository.js'
import type { Metrics } from '../metrics.js'
import type { Signals } from '../signals.js'
import type { GroupCommit } from '../db/group-commit.js'
import { createRefusalBudget, readBody, storedBody, type ReadBody } from '../kie/callback-log.js'
import { errorCodes, type FastifyRequest } from 'fastify'

// kie.ai retries 1, 5 and 15 minutes late and may not re-sign: 30 minutes covers the last retry.
const SIGNATURE_MAX_AGE_MS = 30 * 60_000
const UNSIGNED_WARNING_EVERY_MS = 10 * 60_000
const BODY_LIMIT = 64 * 1024
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

const CallbackQuerySchema = Type.Object(
  {
    task: Type.Optional(Type.String({ maxLength: 64, description: "The gateway's task id" })),
    token: Type.Optional(Type.String({ maxLength: 128, description: 'The per-task token the gateway put in the callback URL' }))
  },
  { examples: [{ task: '50df5987-fd9d-4b79-9e6c-8256c1962747', token: 'q2V0mTx3yWc8g2b2X1cNq0u3cQm5b9a2N8r4k7d1s6E' }] }
)

// For the document only: the body is kept raw and read by parseCallback, tolerating kie.ai's variants.
const KieCallbackSchema = Type.Object(
  {
    code: Type.Integer({ description: '200 = success; anything else = failure' }),
    msg: Type.String(),
    data: Type.Object({
      taskId: Type.String(),
      promptJson: Type.Optional(Type.String()),
      resultUrls: Type.Array(Type.String())
    })
  },
  { examples: [kieCallbackExample] }
)
const Received = Type.Object({ received: Type.Boolean() }, { examples: [{ received: true }] })

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? null

export interface CallbackRoutesOptions {
  repo: Repository
  /** The app's group commit: callbacks arriving together are written in one durable commit. */
  commits: GroupCommit
  clock: Clock
  metrics: Metrics
  signals: Signals
  /** CALLBACK_SECRET first, then earlier ones still accepted during a rotation. */
  tokenSecrets: readonly string[]
  /** Empty: callbacks need no kie.ai signature. Otherwise the current key, then earlier ones. */
  hmacKeys: readonly string[]
  /** Refused deliveries stored per minute per source address. */
  refusedLogMax: number
}

const callbackRoutes: FastifyPluginAsyncTypebox<CallbackRoutesOptions> = async (app, opts) => {
  const { repo, commits, clock, metrics, signals, tokenSecrets, hmacKeys } = opts
  const record = (delivery: CallbackDelivery, apply?: Parameters<typeof repo.recordCallback>[1]) =>
    commits.submit(() => repo.recordCallback(delivery, apply))
  let unsignedWarnedAt = -Infinity
  // Unsigned callbacks while a key is set mean kie.ai's setting is off: say so, but not per callback.
  const warnUnsigned = (now: number) => {
    if (now - unsignedWarnedAt < UNSIGNED_WARNING_EVERY_MS) return
    unsignedWarnedAt = now
    app.log.warn(
      { component: 'callbacks' },
      'kie.ai callbacks arrive without X-Webhook-Signature although KIE_WEBHOOK_HMAC_KEY is set: turn on the webhookHmacKey setting of the kie.ai account (with this key), or unset KIE_WEBHOOK_HMAC_KEY. Until then these callbacks are refused and their tasks are settled through record-info.'
    )
  }

  // Keep the body exactly as sent (whatever its content type): every delivery is stored raw.
  app.removeAllContentTypeParsers()
  // Streamed: a stranger's body is hashed and cut to 4 KB as it arrives, never buffered whole.
  app.addContentTypeParser('*', (request, payload, done) => {
    const { task, token } = request.query as { task?: unknown; token?: unknown }
    if (Number(request.headers['content-length']) > BODY_LIMIT) return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), undefined)
    const trusted = typeof task === 'string' && typeof token === 'string' && verifyCallbackToken(tokenSecrets, task, token)
    const declared = request.headers['content-length'] === undefined ? null : Number(request.headers['content-length'])
    readBody(payload, trusted, BODY_LIMIT).then(
      (body) =>
        body === 'too_large' ? done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), undefined)
        // As Fastify's own parsers do: a body that disagrees with its Content-Length is refused.
        : declared !== null && body.bytes !== declared ? done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), undefined)
        : done(null, body),
      (err: Error) => done(err, undefined)
    )
  })

  const refusals = createRefusalBudget(opts.refusedLogMax)
  const handled = new WeakSet<FastifyRequest>()
  /** The delivery as it arrived (its body whole only if the token proved it is kie.ai's: see the parser). */
  const deliveryOf = (request: FastifyRequest, taskId: string | null, verdict: string, httpStatus: number): CallbackDelivery => {
    const declared = Number(request.headers['content-length'])
    const read = request.body as ReadBody | null | undefined
    const raw = read != null ? storedBody(read) : declared > 0 ? null : storedBody({ kept: Buffer.alloc(0), bytes: 0, sha256: EMPTY_SHA256 })
    return {
      receivedAt: clock.now(),
      taskId,
      kieTaskId: null,
      verdict,
      httpStatus,
      contentType: header(request.headers['content-type']),
      signature: header(request.headers['x-webhook-signature']),
      signatureTimestamp: header(request.headers['x-webhook-timestamp']),
      remoteAddress: request.ip,
      // A body refused unread (413) is known by its declared length only.
      ...(raw ?? { body: '', bodyBytes: Number.isSafeInteger(declared) ? declared : 0, bodySha256: null })
    }
  }
  /** A refusal before any token was valid: bounded per source, and beyond the budget only counted. */
  const recordStranger = async (delivery: CallbackDelivery) => {
    if (refusals.take(delivery.remoteAddress ?? '', delivery.receivedAt)) await record(delivery)
    else metrics.callbacks.inc({ verdict: delivery.verdict })
  }

  // Refusals before the handler runs (body too large, a duplicated or over-long parameter) are kept too.
  app.addHook('onError', async (request, _reply, error) => {
    if (handled.has(request)) return
    const code = (error as { code?: string }).code
    const verdict = code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body_too_large' : (error as { validation?: unknown }).validation ? 'bad_query' : 'malformed_request'
    const taskId = (request.query as { task?: unknown } | undefined)?.task
    await recordStranger(deliveryOf(request, typeof taskId === 'string' ? taskId.slice(0, 64) : null, verdict, error.statusCode ?? 400))
    request.log.warn({ verdict }, 'callback refused')
  })

  app.post('/callbacks/mj', {
    config: { rateLimit: false },
    // The body is documented, not validated here: it is stored raw first, then parsed.
    validatorCompiler: (req) =>
      req.httpPart === 'body' ? (value: unknown) => ({ value }) : validatorCompiler(req as unknown as Parameters<typeof validatorCompiler>[0]),
    schema: {
      operationId: 'receiveKieCallback',
      summary: "kie.ai's completion callback (called by kie.ai, not by clients)",
      tags: ['kie.ai'],
      // No client key: the per-task token in the URL (and kie.ai's signature, when set) authenticate it.
      security: [],
      querystring: CallbackQuerySchema,
      body: KieCallbackSchema,
      response: { 200: Received, ...Object.fromEntries([400, 401, 404, 413].map((c) => [c, Type.Ref(ErrorResponseSchema)])) }
    }
  }, async (request) => {
    handled.add(request)
    const { task: taskId, token } = request.query
    if (taskId) request.logRefs.taskId = taskId
    if (!taskId || !token || !verifyCallbackToken(tokenSecrets, taskId, token)) {
      await recordStranger(deliveryOf(request, taskId ?? null, 'bad_token', 401))
      request.log.warn({ taskId, verdict: 'bad_token' }, 'callback refused')
      throw new CallbackUnauthorizedError('Callback token is missing or invalid')
    }
    const delivery = deliveryOf(request, taskId, 'accepted', 200)
    const refuse = async (verdict: string, error: Error & { statusCode?: number }, effect?: CallbackEffect) => {
      await record({ ...delivery, verdict, httpStatus: error.statusCode ?? 400 }, effect)
      request.log.warn({ taskId, kieTaskId: delivery.kieTaskId, verdict }, 'callback refused')
      return error
    }
    const keep = async (verdict: string, effect?: CallbackEffect) => {
      const changed = await record({ ...delivery, verdict }, effect)
      if (effect?.kind === 'reconcile') signals.emit('reconcileNow')
      return changed
    }

    const task = repo.getTask(taskId)
    if (!task) throw await refuse('unknown_task', new NotFoundError(`Task ${taskId} not found`))
    const parsed = parseCallback(delivery.body)
    delivery.kieTaskId = parsed.kieTaskId
    if (parsed.kieTaskId) request.logRefs.kieTaskId = parsed.kieTaskId
    // The signature names the kie.ai task; a body too broken to name it is checked against the one on record.
    const signedId = parsed.kieTaskId ?? task.kie_task_id
    if (hmacKeys.length > 0) {
      const verdict = signedId === null ? 'unverifiable' : verifyKieSignature({
        keys: hmacKeys,
        taskId: signedId,
        timestamp: delivery.signatureTimestamp ?? undefined,
        signature: delivery.signature ?? undefined,
        nowMs: delivery.receivedAt,
        maxAgeMs: SIGNATURE_MAX_AGE_MS
      })
      if (verdict !== 'valid') {
        if (verdict === 'missing') warnUnsigned(delivery.receivedAt)
        // The token is valid, so kie.ai may well have finished the task: ask record-info now.
        const ask: CallbackEffect = { kind: 'reconcile', taskId, kieTaskId: null, alive: false }
        const error = await refuse(`signature_${verdict}`, new CallbackUnauthorizedError(`Callback signature is ${verdict}`), ask)
        signals.emit('reconcileNow')
        throw error
      }
    }
    const log = { taskId, kieTaskId: parsed.kieTaskId }
    if (task.kie_task_id !== null && parsed.kieTaskId !== null && parsed.kieTaskId !== task.kie_task_id) {
      // kie.ai made (and billed) a second task for one gateway task: 200 so it stops retrying, never applied.
      await keep('duplicate_upstream_task')
      metrics.duplicateUpstreamTasks.inc()
      request.log.warn({ ...log, recordedKieTaskId: task.kie_task_id }, 'kie.ai called back for a second kie.ai task of one gateway task: it was billed twice')
      return { received: true }
    }
    if (task.status === 'succeeded' || task.status === 'failed') {
      await keep('ignored_final')
      request.log.info(log, 'callback changed nothing')
      return { received: true }
    }
    if (parsed.reading === 'unclear') {
      // An ambiguous signal never finishes a task: keep it, answer 200, and ask record-info.
      await keep('ambiguous', { kind: 'reconcile', taskId, kieTaskId: parsed.kieTaskId, alive: true })
      request.log.warn({ ...log, why: parsed.why }, 'callback settles nothing; asking record-info')
      return { received: true }
    }
    const outcome: Outcome =
      parsed.reading === 'succeeded'
        ? { status: 'succeeded', resultUrls: parsed.resultUrls }
        : { status: 'failed', code: 'GW_UPSTREAM_FAILED', message: parsed.msg || `kie.ai reported failure (code ${parsed.code})` }
    const changed = await record(delivery, { kind: 'finish', taskId, outcome, kieTaskId: parsed.kieTaskId })
    request.log.info({ ...log, changed, status: outcome.status }, changed ? 'callback applied' : 'callback changed nothing')
    return { received: true }
  })
}

export default callbackRoutes
