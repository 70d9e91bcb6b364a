import { randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Clock } from '../clock.js'
import type { QueueSettings } from '../config.js'
import type { IdempotencyRow, NewTask, Repository, TaskRow, TaskType, TaskViewRow } from '../db/repository.js'
import { IdempotencyMismatchError, ParentInvalidError, UnsafeUrlError, ValidationError } from '../errors.js'
import { toErrorResponse } from '../plugins/error-handler.js'
import type { Signals } from '../signals.js'
import type { Claim, Deferred, Dispatcher } from '../submission/dispatcher.js'
import type { GroupCommit } from '../db/group-commit.js'
import type { SsrfPolicy } from '../webhooks/ssrf.js'
import { parseWebhookUrl, resolveSafe } from '../webhooks/ssrf.js'
import { createInProgress, idempotencyKeyOf, requestHash } from './idempotency.js'

export interface SubmitDeps {
  repo: Repository
  /** The app's group commit: a new task (and its claim on the rate budget) is stored in it. */
  commits: GroupCommit
  dispatcher: Dispatcher
  clock: Clock
  queue: Pick<QueueSettings, 'submitDeadlineMs'>
  signals: Signals
  /** null secret: webhooks are off, and a callbackUrl is refused. */
  webhooks: { secret: string | null; policy: SsrfPolicy }
  /** The task as the client sees it. */
  view: (row: TaskViewRow) => unknown
}

/** What a POST asks for, before it is a task. */
export interface Draft {
  type: TaskType
  /** A kie.ai grid (taskId), or one of the caller's own tasks to chain to (parentId). */
  taskId?: string | undefined
  parentId?: string | undefined
  imageIndex?: number | undefined
  waterMark?: string | undefined
  params: Record<string, unknown>
  /** The API's `callbackUrl`: the client's webhook URL. */
  webhookUrl?: string | undefined
}

interface Answer {
  statusCode: number
  location: string
  retryAfter?: number | null
  body: unknown
}

const CHAINABLE: readonly TaskType[] = ['generate', 'vary']

/**
 * The one way a POST becomes a task, whatever its kind: checked, stored under its
 * Idempotency-Key, then sent within the rate budget before the answer (so kie.ai's definitive
 * refusals reach the client) or queued, and a chained task waits for its parent.
 */
export function createSubmitter(deps: SubmitDeps) {
  const { repo, clock, dispatcher, signals } = deps
  const inProgress = createInProgress()
  const locationOf = (type: TaskType, id: string) => (type === 'upscale' ? `/upscale/${id}` : `/tasks/${id}`)

  async function checkWebhookUrl(raw: string) {
    if (!deps.webhooks.secret) throw new ValidationError('body.callbackUrl: webhooks are not enabled on this gateway (WEBHOOK_SECRET is not set)')
    try {
      await resolveSafe(parseWebhookUrl(raw), deps.webhooks.policy)
    } catch (err) {
      if (err instanceof UnsafeUrlError) throw new ValidationError(`body.callbackUrl: ${err.message}`)
      throw err
    }
  }

  /** A chained task's parent: one of the caller's own grids. Its kie.ai id once it has succeeded. */
  function parentOf(owner: string, draft: Draft): { parentTaskId: string | null; parentFailed: TaskRow | null } {
    if (draft.type === 'generate') return { parentTaskId: null, parentFailed: null }
    if (draft.taskId === undefined && draft.parentId === undefined) {
      throw new ValidationError('body.taskId: is required (a kie.ai grid), unless parentId names one of your generate or vary tasks')
    }
    if (draft.taskId !== undefined && draft.parentId !== undefined) {
      throw new ValidationError('body.parentId: give taskId (a kie.ai grid) or parentId (one of your generate or vary tasks), not both')
    }
    if (draft.parentId === undefined) return { parentTaskId: draft.taskId as string, parentFailed: null }
    const parent = repo.getOwnedTask(draft.parentId, owner)
    if (!parent) throw new ParentInvalidError(`body.parentId: ${draft.parentId} is not one of your tasks`)
    if (!CHAINABLE.includes(parent.type)) throw new ParentInvalidError(`body.parentId: ${draft.parentId} is an upscale, not a grid (a generate or vary task)`)
    if (parent.status === 'succeeded') return { parentTaskId: parent.kie_task_id, parentFailed: null }
    return { parentTaskId: null, parentFailed: parent.status === 'failed' ? parent : null }
  }

  /** A stored task waiting for its parent, or failed with it already, is not sent. */
  const waits = (task: TaskRow) => (task.parent_id !== null && task.parent_task_id === null) || task.status === 'failed'

  /** Sent now when claimed in the task's own commit; otherwise it is in the queue. */
  async function send(task: TaskRow, claim: Claim | Deferred | null, request: FastifyRequest): Promise<Answer> {
    const location = locationOf(task.type, task.id)
    if (claim === null) return { statusCode: 202, location, body: deps.view(task) }
    const outcome = claim.kind === 'claimed' ? await dispatcher.sendClaimed(task, claim, request.log) : claim
    if (outcome.kind === 'failed') {
      const body = toErrorResponse(outcome.error)
      return { statusCode: body.statusCode, location, retryAfter: outcome.retryAfterSeconds, body }
    }
    if (outcome.kind === 'deferred' || outcome.kind === 'retrying') signals.emit('taskQueued')
    const row = outcome.kind === 'deferred' ? (repo.getTask(task.id) as TaskRow) : outcome.task
    return { statusCode: 202, location, body: deps.view(row) }
  }

  /** The same key again: the original answer, once the first request has one. */
  async function replay(row: IdempotencyRow, hash: string): Promise<Answer> {
    if (row.request_hash !== hash) throw new IdempotencyMismatchError(JSON.stringify(row.key))
    await inProgress.wait(row.owner, row.key)
    const saved = repo.idempotencyKey(row.owner, row.key)
    const task = repo.getTask(row.task_id) as TaskRow
    const location = locationOf(task.type, task.id)
    if (saved?.response_status != null && saved.response_body !== null) {
      return { statusCode: saved.response_status, location, body: JSON.parse(saved.response_body) }
    }
    // The first request never answered (the process stopped): the task as it stands now.
    const body = deps.view(task)
    repo.saveIdempotentResponse(row.owner, row.key, 202, JSON.stringify(body))
    return { statusCode: 202, location, body }
  }

  const answer = (reply: FastifyReply, a: Answer, replayed = false) => {
    reply.code(a.statusCode).header('location', a.location)
    if (a.retryAfter) reply.header('retry-after', String(a.retryAfter))
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.send(a.body)
  }

  return async function submit(request: FastifyRequest, reply: FastifyReply, draft: Draft) {
    for (const [field, value] of [['waterMark', draft.waterMark], ['callbackUrl', draft.webhookUrl]] as const) {
      // SQLite would store a lone surrogate as invalid UTF-8 and hand back something else.
      if (value !== undefined && !value.isWellFormed()) throw new ValidationError(`body.${field}: must be well-formed Unicode (no lone surrogates)`)
    }
    const key = idempotencyKeyOf(request)
    if (draft.webhookUrl !== undefined) await checkWebhookUrl(draft.webhookUrl)
    const { parentTaskId, parentFailed } = parentOf(request.clientId, draft)
    const now = clock.now()
    const task: NewTask = {
      id: randomUUID(),
      owner: request.clientId,
      type: draft.type,
      parentId: draft.parentId ?? null,
      parentTaskId,
      imageIndex: draft.imageIndex ?? null,
      waterMark: draft.waterMark ?? null,
      params: draft.params,
      webhookUrl: draft.webhookUrl ?? null,
      submitDeadlineAt: now + deps.queue.submitDeadlineMs
    }
    // Stored before anything is sent, so no answer from kie.ai can leave it unrecorded.
    request.logRefs.taskId = task.id
    const store = (): { created: TaskRow } | { existing: IdempotencyRow } => {
      const made = key === undefined ? { created: repo.createTask(task, now) } : repo.createTaskOnce(task, now, key, hash)
      // Chained to a parent that has already failed: it fails with it, at once.
      if ('created' in made && parentFailed) {
        repo.finish(made.created.id, { status: 'failed', code: 'GW_PARENT_FAILED', message: `its parent task ${parentFailed.id} failed: ${parentFailed.error_message ?? ''}` }, now, 'parent')
        return { created: repo.getTask(made.created.id) as TaskRow }
      }
      return made
    }
    // Upscale requests hash as they always did, so keys stored before other kinds existed still match.
    const hash = requestHash(draft.type === 'upscale' ? request.body : { type: draft.type, body: request.body })
    // Stored, and within the budget marked sending, in one durable commit shared with whatever
    // else is written in this turn; the request to kie.ai goes out only after it.
    const made = await deps.commits.submit(() =>
      repo.inTransaction(() => {
        const m = store()
        if ('existing' in m) return m
        return { ...m, claim: waits(m.created) ? null : dispatcher.claimNew(m.created, clock.now()) }
      })
    )
    if ('existing' in made) return answer(reply, await replay(made.existing, hash), true)
    if (key === undefined) return answer(reply, await send(made.created, made.claim, request))
    const finished = inProgress.start(request.clientId, key)
    try {
      const result = await send(made.created, made.claim, request)
      await deps.commits.submit(() => repo.inTransaction(() => repo.saveIdempotentResponse(request.clientId, key, result.statusCode, JSON.stringify(result.body))))
      return answer(reply, result)
    } finally {
      finished()
    }
  }
}

export type Submit = ReturnType<typeof createSubmitter>
