import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorResponseSchema, IdempotencyMismatchError, NotFoundError, UnsafeUrlError, ValidationError } from '../errors.js'
import { clientAuth } from '../plugins/client-auth.js'
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type { IdempotencyRow, TaskRow } from '../db/repository.js'
import { toErrorResponse } from '../plugins/error-handler.js'
import { createInProgress, idempotencyKeyOf, requestHash } from '../tasks/idempotency.js'
import { parseWebhookUrl, resolveSafe } from '../webhooks/ssrf.js'
import type { Clock } from '../clock.js'
import type { QueueSettings } from '../config.js'
import type { Repository } from '../db/repository.js'
import type { Signals } from '../signals.js'
import type { Dispatcher } from '../submission/dispatcher.js'
import type { QueueInfo } from '../submission/estimate.js'
import type { Waiters } from '../tasks/waiters.js'
import type { SsrfPolicy } from '../webhooks/ssrf.js'
import { CreateUpscaleBodySchema, ListQuerySchema, TaskListSchema, TaskParamsSchema, TaskQuerySchema, TaskSchema } from '../tasks/schemas.js'
import { decodeCursor, encodeCursor, toTask } from '../tasks/view.js'

const Err = Type.Ref(ErrorResponseSchema)
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Err]))

export interface UpscaleRoutesOptions {
  apiKeys: readonly string[]
  repo: Repository
  dispatcher: Dispatcher
  clock: Clock
  queue: Pick<QueueSettings, 'submitDeadlineMs'>
  /** Where a queued task stands. */
  queueInfo: (row: TaskRow) => QueueInfo | null
  waiters: Waiters
  signals: Signals
  /** null secret: webhooks are off, and a callbackUrl is refused. */
  webhooks: { secret: string | null; policy: SsrfPolicy }
}

const upscaleRoutes: FastifyPluginAsyncTypebox<UpscaleRoutesOptions> = async (app, opts) => {
  const { repo, clock, queue, dispatcher, waiters, signals } = opts
  const view = (row: TaskRow) => toTask(row, opts.queueInfo(row), row.status === 'succeeded' ? repo.resultFiles(row.id) : [])
  const inProgress = createInProgress()
  app.addHook('onRequest', clientAuth(opts.apiKeys))

  app.post('/upscale', {
    bodyLimit: 8 * 1024,
    schema: {
      tags: ['upscale'],
      security: [{ bearer: [] }],
      summary: 'Upscale one image of a finished Midjourney grid',
      headers: Type.Object({
        'idempotency-key': Type.Optional(Type.String({ description: 'Makes retries of this request safe: same key and body, same answer, one task (kept 24 h)' }))
      }),
      body: CreateUpscaleBodySchema,
      response: { 202: TaskSchema, ...errors(400, 401, 402, 413, 415, 422, 429, 502, 503) }
    }
  }, async (request, reply) => {
    // The public field keeps kie.ai's word; it is the client's webhook URL.
    const { taskId, imageIndex, waterMark, callbackUrl: webhookUrl } = request.body
    for (const [field, value] of [['waterMark', waterMark], ['callbackUrl', webhookUrl]] as const) {
      // SQLite would store a lone surrogate as invalid UTF-8 and hand back something else.
      if (value !== undefined && !value.isWellFormed()) throw new ValidationError(`body.${field}: must be well-formed Unicode (no lone surrogates)`)
    }
    const key = idempotencyKeyOf(request)
    if (webhookUrl !== undefined) await checkWebhookUrl(webhookUrl)
    const now = clock.now()
    const task = {
      id: randomUUID(),
      owner: request.clientId,
      parentTaskId: taskId,
      imageIndex,
      waterMark: waterMark ?? null,
      webhookUrl: webhookUrl ?? null,
      submitDeadlineAt: now + queue.submitDeadlineMs
    }
    // Stored before anything is sent, so no answer from kie.ai can leave it unrecorded.
    request.logRefs.taskId = task.id
    if (key === undefined) return answer(reply, await submit(repo.createTask(task, now), request.log))

    const hash = requestHash(request.body)
    const created = repo.createTaskOnce(task, now, key, hash)
    if ('existing' in created) return answer(reply, await replay(created.existing, hash), true)
    const finished = inProgress.start(request.clientId, key)
    try {
      const result = await submit(created.created, request.log)
      repo.saveIdempotentResponse(request.clientId, key, result.statusCode, JSON.stringify(result.body))
      return answer(reply, result)
    } finally {
      finished()
    }
  })

  /** Refused at submit time (and checked again at each send): only public http(s) targets. */
  async function checkWebhookUrl(raw: string) {
    if (!opts.webhooks.secret) {
      throw new ValidationError('body.callbackUrl: webhooks are not enabled on this gateway (WEBHOOK_SECRET is not set)')
    }
    try {
      await resolveSafe(parseWebhookUrl(raw), opts.webhooks.policy)
    } catch (err) {
      if (err instanceof UnsafeUrlError) throw new ValidationError(`body.callbackUrl: ${err.message}`)
      throw err
    }
  }

  interface Answer {
    statusCode: number
    location: string
    retryAfter?: number | null
    body: unknown
  }
  const answer = (reply: FastifyReply, a: Answer, replayed = false) => {
    reply.code(a.statusCode).header('location', a.location)
    if (a.retryAfter) reply.header('retry-after', String(a.retryAfter))
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.send(a.body)
  }

  /** Within the rate budget the task is sent before we answer, so kie.ai's definitive
   * refusals reach the client; otherwise it waits in the queue and the answer says where. */
  async function submit(task: TaskRow, log: FastifyBaseLogger): Promise<Answer> {
    const location = `/upscale/${task.id}`
    const outcome = await dispatcher.sendNew(task, log)
    if (outcome.kind === 'failed') {
      const body = toErrorResponse(outcome.error)
      return { statusCode: body.statusCode, location, retryAfter: outcome.retryAfterSeconds, body }
    }
    if (outcome.kind === 'deferred' || outcome.kind === 'retrying') signals.emit('taskQueued')
    const row = outcome.kind === 'deferred' ? (repo.getTask(task.id) as TaskRow) : outcome.task
    return { statusCode: 202, location, body: view(row) }
  }

  /** The same key again: the original answer, once the first request has one. */
  async function replay(row: IdempotencyRow, hash: string): Promise<Answer> {
    if (row.request_hash !== hash) throw new IdempotencyMismatchError(JSON.stringify(row.key))
    await inProgress.wait(row.owner, row.key)
    const saved = repo.idempotencyKey(row.owner, row.key)
    const location = `/upscale/${row.task_id}`
    if (saved?.response_status != null && saved.response_body !== null) {
      return { statusCode: saved.response_status, location, body: JSON.parse(saved.response_body) }
    }
    // The first request never answered (the process stopped): the task as it stands now.
    const body = view(repo.getTask(row.task_id) as TaskRow)
    repo.saveIdempotentResponse(row.owner, row.key, 202, JSON.stringify(body))
    return { statusCode: 202, location, body }
  }

  app.get('/upscale/:id', {
    schema: {
      tags: ['upscale'],
      security: [{ bearer: [] }],
      summary: 'One upscale task; with ?wait=N, answers as soon as it is final or after N seconds',
      params: TaskParamsSchema,
      querystring: TaskQuerySchema,
      response: { 200: TaskSchema, ...errors(400, 401, 404, 429) }
    }
  }, async (request) => {
    let row = repo.getOwnedTask(request.params.id, request.clientId)
    // Another key's task answers exactly like a missing one.
    if (!row) throw new NotFoundError(`Task ${request.params.id} not found`)
    request.logRefs.taskId = row.id
    const wait = request.query.wait ?? 0
    if (wait > 0 && row.status !== 'succeeded' && row.status !== 'failed') {
      // Parked until the event that finishes the task (or the time is up, or shutdown).
      await waiters.wait(row.id, wait * 1000)
      row = repo.getTask(row.id) as TaskRow
    }
    return view(row)
  })

  app.get('/upscale', {
    schema: {
      tags: ['upscale'],
      security: [{ bearer: [] }],
      summary: "The caller's upscale tasks, newest first",
      querystring: ListQuerySchema,
      response: { 200: TaskListSchema, ...errors(400, 401, 429) }
    }
  }, async (request) => {
    const { status, limit = 20, cursor } = request.query
    const beforeSeq = cursor === undefined ? undefined : decodeCursor(cursor)
    if (beforeSeq === null) throw new ValidationError('querystring.cursor: is not a cursor this API returned')
    const rows = repo.listTasks({ owner: request.clientId, status, beforeSeq, limit: limit + 1 })
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { items: page.map(view), nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
  })
}

export default upscaleRoutes
