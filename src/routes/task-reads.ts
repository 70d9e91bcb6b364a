import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Repository, TaskType, TaskViewRow } from '../db/repository.js'
import { ErrorResponseSchema, NotFoundError, ValidationError } from '../errors.js'
import { ListQuerySchema, TaskListSchema, TaskParamsSchema, TaskQuerySchema, TaskSchema, type Task } from '../tasks/schemas.js'
import type { Waiters } from '../tasks/waiters.js'
import { decodeCursor, encodeCursor } from '../tasks/view.js'

const Err = Type.Ref(ErrorResponseSchema)
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Err]))

export interface ReadOptions {
  /** '/upscale' (upscale tasks only, as it always was) or '/tasks' (every kind). */
  prefix: string
  type: TaskType | null
  repo: Repository
  waiters: Waiters
  view: (row: TaskViewRow) => Task
}

/** GET <prefix>/:id (with ?wait= long polling) and GET <prefix> (newest first, by cursor). */
export function registerReads(app: FastifyInstance, o: ReadOptions) {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()
  const { repo, view } = o
  const what = o.type === null ? 'task' : `${o.type} task`
  const tags = [o.type === 'upscale' ? 'upscale' : 'tasks']

  // Upscales keep their own names under /upscale; /tasks serves every kind.
  const [one, many] = o.type === 'upscale' ? ['Upscale', 'Upscales'] : ['Task', 'Tasks']
  typed.get(`${o.prefix}/:id`, {
    schema: {
      operationId: `get${one}`,
      tags,
      summary: `One ${what}; with ?wait=N, answers as soon as it is final or after N seconds`,
      params: TaskParamsSchema,
      querystring: TaskQuerySchema,
      response: { 200: Type.Ref(TaskSchema), ...errors(400, 401, 404, 429) }
    }
  }, async (request) => {
    let row = repo.readOwnedTask(request.params.id, request.clientId)
    // Another key's task answers exactly like a missing one; so does another kind under /upscale.
    if (!row || (o.type !== null && row.type !== o.type)) throw new NotFoundError(`Task ${request.params.id} not found`)
    request.logRefs.taskId = row.id
    const wait = request.query.wait ?? 0
    if (wait > 0 && row.status !== 'succeeded' && row.status !== 'failed') {
      // Parked until the event that finishes the task (or the time is up, or shutdown).
      await o.waiters.wait(row.id, wait * 1000)
      row = repo.readTask(row.id) as TaskViewRow
    }
    return view(row)
  })

  const query = o.type === null ? ListQuerySchema : Type.Omit(ListQuerySchema, ['type'], { additionalProperties: false })
  typed.get(o.prefix, {
    schema: {
      operationId: `list${many}`,
      tags,
      summary: o.type === null ? "The caller's tasks of every kind, newest first" : `The caller's ${what}s, newest first`,
      querystring: query,
      response: { 200: Type.Ref(TaskListSchema), ...errors(400, 401, 429) }
    }
  }, async (request) => {
    const q = request.query as { type?: TaskType; status?: Task['status']; limit?: number; cursor?: string }
    const { status, limit = 20, cursor } = q
    const beforeSeq = cursor === undefined ? undefined : decodeCursor(cursor)
    if (beforeSeq === null) throw new ValidationError('querystring.cursor: is not a cursor this API returned')
    const rows = repo.listTasks({ owner: request.clientId, type: o.type ?? q.type, status, beforeSeq, limit: limit + 1 })
    const page = rows.slice(0, limit)
    const last = page[page.length - 1]
    return { items: page.map(view), nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null }
  })
}
