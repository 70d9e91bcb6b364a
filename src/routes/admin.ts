import { stat } from 'node:fs/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type TSchema } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { createThumbnails, THUMBNAIL_WIDTH } from '../archive/thumbnail.js'
import type { Clock } from '../clock.js'
import type { AdminTaskListRow, Repository, TaskRow, TaskViewRow } from '../db/repository.js'
import {
  ErrorCodeSchema,
  ErrorResponseSchema,
  NotFoundError,
  NothingToRetryError,
  TaskNotOpenError,
  ValidationError,
  type ErrorCode
} from '../errors.js'
import {
  adminOverviewExample,
  adminTaskDetailExample,
  adminTaskExample,
  adminTaskSummaryExample
} from '../openapi-examples.js'
import { adminAuth } from '../plugins/client-auth.js'
import { redactCallbackTokens } from '../kie/callback-token.js'
import type { Signals } from '../signals.js'
import type { Dispatcher } from '../submission/dispatcher.js'
import { ArchiveStatusSchema, TaskParamsSchema, TaskSchema, TaskStatusSchema, TaskTypeSchema, type Task } from '../tasks/schemas.js'
import { decodeCursor, encodeCursor } from '../tasks/view.js'
import type { CreditReading } from '../workers/credits.js'
import { DeliveryListSchema, DeliverySchema, deliveriesOf } from './deliveries.js'
import { sendImmutable, storedFile } from './stored-file.js'

/** Refused callbacks are counted over this window in the overview. */
export const REFUSED_CALLBACKS_WINDOW_MS = 3_600_000

const Iso = Type.String({ format: 'date-time' })
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const Err = Type.Ref(ErrorResponseSchema)
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Err]))
const iso = (ms: number) => new Date(ms).toISOString()
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms))

const OverviewSchema = Type.Object(
  {
    queue: Type.Object({
      depth: Type.Integer({ minimum: 0, description: 'Tasks waiting to be sent (chained ones waiting for their parent too)' }),
      nextSendAt: Nullable(Type.String({ format: 'date-time', description: 'When the next queued task can go, as far as the budget, its retry time and the breaker allow; null: none can' })),
      window: Type.Object({
        used: Type.Integer({ minimum: 0, description: 'Requests counted in the rate window now' }),
        max: Type.Integer({ minimum: 1, description: 'KIE_RATE_LIMIT_MAX' }),
        windowMs: Type.Integer({ minimum: 1, description: 'The sliding window, with its 5% margin' })
      })
    }),
    breaker: Type.Object({
      state: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')], { description: 'half-open: the cool-off is over and the next send is a probe' }),
      openUntil: Nullable(Iso)
    }),
    credits: Type.Object({
      balance: Nullable(Type.Number({ description: "kie.ai's credit balance as last read; null until read" })),
      checkedAt: Nullable(Iso)
    }),
    tasks: Type.Object(
      { queued: Type.Integer(), submitted: Type.Integer(), succeeded: Type.Integer(), failed: Type.Integer() },
      { description: 'Tasks by status, every kind and client together' }
    ),
    refusedCallbacks: Type.Object({
      sinceMs: Type.Integer({ description: 'The window counted: the last hour' }),
      byVerdict: Type.Array(Type.Object({ verdict: Type.String(), count: Type.Integer({ minimum: 1 }) }), {
        description: 'Stored callback deliveries that were refused (bad token, signature, unknown task, ...), most frequent first'
      })
    })
  },
  { examples: [adminOverviewExample] }
)

const AdminListQuerySchema = Type.Object(
  {
    status: Type.Optional(TaskStatusSchema),
    type: Type.Optional(TaskTypeSchema),
    client: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The owner: name:<key name>, or the fingerprint of an unnamed key' })),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'A gateway task id or a kie.ai task id, matched exactly' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The nextCursor of the previous page' }))
  },
  { additionalProperties: false, examples: [{ status: 'failed', limit: 50 }] }
)

const TaskSummarySchema = Type.Object({
  id: Type.String(),
  type: TaskTypeSchema,
  status: TaskStatusSchema,
  client: Type.String({ description: 'The owner: name:<key name>, or the fingerprint of an unnamed key' }),
  kieTaskId: Nullable(Type.String()),
  prompt: Nullable(Type.String({ description: "A generate task's prompt; null for the other kinds" })),
  waterMark: Nullable(Type.String()),
  errorCode: Nullable(ErrorCodeSchema),
  createdAt: Iso,
  updatedAt: Iso
})
const AdminTaskListSchema = Type.Object(
  { items: Type.Array(TaskSummarySchema), nextCursor: Nullable(Type.String({ description: 'Pass as ?cursor= for the next (older) page; null at the end' })) },
  { examples: [{ items: [adminTaskSummaryExample], nextCursor: 'czox' }] }
)

/** The task as its client sees it, and whose it is. */
const AdminTaskSchema = Type.Object(
  { ...TaskSchema.properties, client: Type.String({ description: 'The owner: name:<key name>, or the fingerprint of an unnamed key' }) },
  { examples: [adminTaskExample] }
)

const TaskDetailSchema = Type.Object(
  {
    task: AdminTaskSchema,
    timeline: Type.Array(
      Type.Object({
        at: Iso,
        from: Nullable(TaskStatusSchema),
        to: TaskStatusSchema,
        source: Type.String({ description: 'What moved it: create, submit, callback, reconcile, timeout, recovery, deadline, parent' })
      })
    ),
    callbacks: Type.Array(
      Type.Object({
        id: Type.Integer(),
        receivedAt: Iso,
        verdict: Type.String({ description: 'accepted, ambiguous, ignored_final, duplicate_upstream_task, or why it was refused' }),
        httpStatus: Type.Integer(),
        contentType: Nullable(Type.String()),
        remoteAddress: Nullable(Type.String()),
        signed: Type.Boolean({ description: 'Whether it carried X-Webhook-Signature' }),
        body: Type.String({ description: "The body as stored, as text (callback tokens in URLs shown as [redacted]): kie.ai's whole; a delivery refused before its token was valid, only its first 4 KB" }),
        bodyBytes: Nullable(Type.Integer({ description: 'The size of the body as received' })),
        bodySha256: Nullable(Type.String())
      }),
      { description: 'Oldest first; the latest 200 at most' }
    ),
    deliveries: Type.Array(Type.Ref(DeliverySchema), { description: 'Its webhook deliveries, as GET /tasks/{id}/deliveries' }),
    files: Type.Array(
      Type.Object({
        index: Type.Integer({ minimum: 0 }),
        status: ArchiveStatusSchema,
        bytes: Nullable(Type.Integer()),
        contentType: Nullable(Type.String()),
        error: Nullable(Type.String()),
        imageUrl: Nullable(Type.String({ description: 'The archived image, once stored' })),
        thumbnailUrl: Nullable(Type.String({ description: `A WebP at most ${THUMBNAIL_WIDTH} px wide, once stored` }))
      })
    )
  },
  { examples: [adminTaskDetailExample] }
)

const FileParamsSchema = Type.Object(
  { ...TaskParamsSchema.properties, index: Type.Integer({ minimum: 0, maximum: 15, description: 'Which result file' }) },
  { examples: [{ id: adminTaskExample.id, index: 0 }] }
)
const Image = (description: string) => Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description, examples: ['<binary image>'] })
const NotModified = Type.Null({ description: 'Not modified', examples: [null] })
const ReconciledSchema = Type.Object({ task: AdminTaskSchema }, { examples: [{ task: { ...adminTaskExample, status: 'submitted' } }] })

export interface AdminRoutesOptions {
  /** ADMIN_API_KEYS (the plugin is registered only when there is one). */
  adminKeys: readonly string[]
  repo: Repository
  clock: Clock
  signals: Signals
  dispatcher: Dispatcher
  /** The task as its client sees it (the app's one view). */
  view: (row: TaskViewRow) => Task
  /** kie.ai's balance as the credits worker last read it. */
  creditReading: CreditReading
  /** A retried dead letter gets one more attempt (as the client route). */
  webhookAttempts: number
  /** The archive's folder: thumbnails are written there first, then renamed beside their file. */
  archiveDir: string | null
}

/**
 * The admin API under /admin: every client's tasks, their timeline, callbacks, deliveries and
 * files, and the gateway's state at a glance, for the operator console. Its own keys
 * (ADMIN_API_KEYS); wrong ones count toward the per-address limit; no per-client rate limit.
 */
const adminRoutes: FastifyPluginAsyncTypebox<AdminRoutesOptions> = async (app, opts) => {
  const { repo, clock, signals, dispatcher, view } = opts
  const thumbnails = createThumbnails(opts.archiveDir)
  app.addHook('onRequest', adminAuth(opts.adminKeys))
  const base = { tags: ['admin'], security: [{ admin: [] }] }
  const config = { rateLimit: false }

  const taskOf = (request: FastifyRequest, id: string): TaskRow => {
    const row = repo.getTask(id)
    if (!row) throw new NotFoundError(`Task ${id} not found`)
    request.logRefs.taskId = id
    return row
  }
  const adminView = (row: TaskRow) => ({ ...view(row), client: row.owner })
  const summary = (r: AdminTaskListRow) => {
    const params = r.type === 'generate' && r.params !== null ? (JSON.parse(r.params) as { prompt?: unknown }) : null
    return {
      id: r.id,
      type: r.type,
      status: r.status,
      client: r.owner,
      kieTaskId: r.kie_task_id,
      prompt: typeof params?.prompt === 'string' ? params.prompt : null,
      waterMark: r.water_mark,
      errorCode: r.error_code as ErrorCode | null,
      createdAt: iso(r.created_at),
      updatedAt: iso(r.updated_at)
    }
  }
  const fileUrl = (id: string, index: number) => `/admin/tasks/${encodeURIComponent(id)}/files/${index}`

  app.get('/admin/overview', {
    config,
    schema: { ...base, operationId: 'getAdminOverview', summary: 'The queue, the rate window, the breaker, the credit balance, tasks by status and refused callbacks', response: { 200: OverviewSchema, ...errors(401, 429) } }
  }, async () => {
    const now = clock.now()
    const budget = dispatcher.budget(now)
    const used = repo.slotsUsed(budget)
    const openUntil = dispatcher.breaker.openUntil()
    // The next send: the earliest sendable task's time, no sooner than the breaker and the window allow.
    const earliest = repo.earliestNextAttempt()
    let nextSendAt: number | null = null
    if (earliest !== null) {
      nextSendAt = Math.max(earliest, now, openUntil ?? 0)
      if (used >= budget.max) nextSendAt = Math.max(nextSendAt, (repo.slotTime(budget, 0, now) ?? now) + dispatcher.windowMs)
    }
    const counts = { queued: 0, submitted: 0, succeeded: 0, failed: 0 }
    for (const { status, n } of repo.statusCounts()) counts[status] = n
    return {
      queue: { depth: repo.queueDepth(), nextSendAt: isoOrNull(nextSendAt), window: { used, max: budget.max, windowMs: dispatcher.windowMs } },
      breaker: { state: openUntil === null ? 'closed' as const : now < openUntil ? 'open' as const : 'half-open' as const, openUntil: isoOrNull(openUntil) },
      credits: { balance: opts.creditReading.balance, checkedAt: isoOrNull(opts.creditReading.checkedAt) },
      tasks: counts,
      refusedCallbacks: {
        sinceMs: REFUSED_CALLBACKS_WINDOW_MS,
        byVerdict: repo.admin.refusedCallbacks(now - REFUSED_CALLBACKS_WINDOW_MS).map(({ verdict, n }) => ({ verdict, count: n }))
      }
    }
  })

  app.get('/admin/tasks', {
    config,
    schema: { ...base, operationId: 'listAdminTasks', summary: "Every client's tasks, newest first; by status, kind, client, or an exact gateway or kie.ai id", querystring: AdminListQuerySchema, response: { 200: AdminTaskListSchema, ...errors(400, 401, 429) } }
  }, async (request) => {
    const { status, type, client, q, limit = 50, cursor } = request.query
    const beforeSeq = cursor === undefined ? undefined : decodeCursor(cursor)
    if (beforeSeq === null) throw new ValidationError('querystring.cursor: is not a cursor this API returned')
    const rows = repo.admin.listTasks({ owner: client, type, status, q, beforeSeq, limit: limit + 1 })
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { items: page.map(summary), nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
  })

  app.get('/admin/tasks/:id', {
    config,
    schema: { ...base, operationId: 'getAdminTask', summary: 'One task of any client: its view, timeline, callbacks (bodies as text), webhook deliveries and files', params: TaskParamsSchema, response: { 200: TaskDetailSchema, ...errors(401, 404, 429) } }
  }, async (request) => {
    const { id } = request.params
    const row = taskOf(request, id)
    request.logRefs.kieTaskId = row.kie_task_id
    return {
      task: adminView(row),
      timeline: repo.taskEvents(id).map((e) => ({ at: iso(e.at), from: e.from_status, to: e.to_status, source: e.source })),
      callbacks: repo.admin.callbacks(id).map((c) => ({
        id: c.id,
        receivedAt: iso(c.received_at),
        verdict: c.verdict,
        httpStatus: c.http_status,
        contentType: c.content_type,
        remoteAddress: c.remote_address,
        signed: c.signature !== null,
        body: redactCallbackTokens(c.body),
        bodyBytes: c.body_bytes,
        bodySha256: c.body_sha256
      })),
      deliveries: deliveriesOf(repo, id),
      files: repo.resultFiles(id).map((f) => {
        const stored = f.status === 'stored' && f.path !== null
        return {
          index: f.idx,
          status: f.status,
          bytes: f.bytes,
          contentType: f.content_type,
          error: f.error,
          imageUrl: stored ? fileUrl(id, f.idx) : null,
          thumbnailUrl: stored ? `${fileUrl(id, f.idx)}/thumbnail` : null
        }
      })
    }
  })

  app.get('/admin/tasks/:id/files/:index', {
    config,
    schema: {
      ...base,
      operationId: 'getAdminTaskFile',
      summary: "One archived image of the task, from the gateway's archive (ETag, If-None-Match → 304)",
      params: FileParamsSchema,
      response: { 200: Image('The image bytes'), 304: NotModified, ...errors(401, 404, 409, 410, 429) }
    }
  }, async (request, reply) => {
    const { id, index } = request.params
    taskOf(request, id)
    const file = storedFile(repo, id, index)
    return sendImmutable(request, reply, { path: file.path, etag: `"${file.sha256}"`, contentType: file.content_type ?? 'application/octet-stream', bytes: file.bytes ?? 0 })
  })

  app.get('/admin/tasks/:id/files/:index/thumbnail', {
    config,
    schema: {
      ...base,
      operationId: 'getAdminTaskThumbnail',
      summary: `A WebP thumbnail (at most ${THUMBNAIL_WIDTH} px wide) of one archived image, made once and cached beside it`,
      params: FileParamsSchema,
      response: { 200: Image('The WebP bytes'), 304: NotModified, ...errors(401, 404, 409, 410, 429) }
    }
  }, async (request, reply) => {
    const { id, index } = request.params
    taskOf(request, id)
    const file = storedFile(repo, id, index)
    // The thumbnail of a file never changes either: it follows the file's hash.
    const etag = `"${file.sha256}-w${THUMBNAIL_WIDTH}.webp"`
    const path = await thumbnails.ensure(file.path)
    return sendImmutable(request, reply, { path, etag, contentType: 'image/webp', bytes: (await stat(path)).size })
  })

  app.post('/admin/tasks/:id/deliveries/retry', {
    config,
    schema: { ...base, operationId: 'retryAdminTaskDeliveries', summary: "Send a task's dead-lettered webhook delivery once more (any client's)", params: TaskParamsSchema, response: { 202: Type.Ref(DeliveryListSchema), ...errors(401, 404, 409, 429) } }
  }, async (request, reply) => {
    const { id } = request.params
    taskOf(request, id)
    // One more attempt: counted as the last of the schedule, so a failure dead-letters it again.
    const retried = repo.retryDeadWebhooks(id, clock.now(), opts.webhookAttempts)
    if (retried.length === 0) throw new NothingToRetryError(id)
    signals.emit('webhookDue')
    return reply.code(202).send({ items: deliveriesOf(repo, id) })
  })

  app.post('/admin/tasks/:id/reconcile', {
    config,
    schema: { ...base, operationId: 'reconcileAdminTask', summary: "Ask kie.ai's record-info about a submitted task now, instead of at its next scheduled poll", params: TaskParamsSchema, response: { 202: ReconciledSchema, ...errors(401, 404, 409, 429) } }
  }, async (request, reply) => {
    const { id } = request.params
    const row = taskOf(request, id)
    if (row.status !== 'submitted') throw new TaskNotOpenError(id, row.status === 'queued' ? 'it is queued, not yet sent to kie.ai' : `it is already ${row.status}`)
    // Without kie.ai's id record-info cannot be asked: the task waits for its callback.
    if (row.kie_task_id === null) throw new TaskNotOpenError(id, "kie.ai's task id is not known (the submission answer was lost); it waits for its callback")
    // An operator's question is no sign of life: the task's timeout keeps running.
    if (!repo.tasks.reconcileNow(id, clock.now(), null, false)) {
      throw new TaskNotOpenError(id, `it is already ${(repo.getTask(id) as TaskRow).status}`)
    }
    signals.emit('reconcileNow')
    return reply.code(202).send({ task: adminView(repo.getTask(id) as TaskRow) })
  })
}

export default adminRoutes
