import type { Db } from './open.js'

export type TaskStatus = 'queued' | 'submitted' | 'succeeded' | 'failed'
export const FINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed']

export interface TaskRow {
  seq: number
  id: string
  owner: string
  status: TaskStatus
  parent_task_id: string
  image_index: number
  water_mark: string | null
  kie_task_id: string | null
  result_urls: string | null
  error_code: string | null
  error_message: string | null
  send_state: 'pending' | 'sending' | 'sent'
  attempts: number
  created_at: number
  updated_at: number
  completed_at: number | null
  last_activity_at: number
}

export interface NewTask {
  id: string
  owner: string
  parentTaskId: string
  imageIndex: number
  waterMark: string | null
}

export type Outcome =
  | { status: 'succeeded'; resultUrls: string[] }
  | { status: 'failed'; code: string; message: string }

export interface CallbackDelivery {
  receivedAt: number
  taskId: string | null
  kieTaskId: string | null
  verdict: string
  httpStatus: number
  contentType: string | null
  signature: string | null
  signatureTimestamp: string | null
  remoteAddress: string | null
  body: string
}

export interface ListQuery {
  owner: string
  status?: TaskStatus | undefined
  beforeSeq?: number | undefined
  limit: number
}

/** All SQL that the running gateway issues, each statement prepared once. */
export function createRepository(db: Db) {
  const s = {
    insertTask: db.prepare(`INSERT INTO tasks
      (id, owner, status, parent_task_id, image_index, water_mark, created_at, updated_at, last_activity_at)
      VALUES (@id, @owner, 'queued', @parentTaskId, @imageIndex, @waterMark, @now, @now, @now)
      RETURNING *`),
    byId: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    byIdAndOwner: db.prepare('SELECT * FROM tasks WHERE id = ? AND owner = ?'),
    list: db.prepare(`SELECT * FROM tasks WHERE owner = @owner AND seq < @beforeSeq
      ORDER BY seq DESC LIMIT @limit`),
    listByStatus: db.prepare(`SELECT * FROM tasks WHERE owner = @owner AND status = @status AND seq < @beforeSeq
      ORDER BY seq DESC LIMIT @limit`),
    markSending: db.prepare(`UPDATE tasks SET send_state = 'sending', attempts = attempts + 1, updated_at = @now
      WHERE id = @id AND status = 'queued' AND send_state = 'pending'`),
    markSubmitted: db.prepare(`UPDATE tasks SET status = 'submitted', send_state = 'sent', kie_task_id = @kieTaskId,
        updated_at = @now, last_activity_at = @now
      WHERE id = @id AND status = 'queued'`),
    // A callback may have finished the task before the submission answer was recorded.
    learnKieTaskId: db.prepare(`UPDATE tasks SET send_state = 'sent', kie_task_id = coalesce(kie_task_id, @kieTaskId)
      WHERE id = @id AND (kie_task_id IS NULL OR send_state <> 'sent')`),
    finish: db.prepare(`UPDATE tasks SET status = @status, result_urls = @resultUrls, error_code = @errorCode,
        error_message = @errorMessage, kie_task_id = coalesce(kie_task_id, @kieTaskId),
        completed_at = @now, updated_at = @now, last_activity_at = @now
      WHERE id = @id AND status IN ('queued', 'submitted')`),
    insertDelivery: db.prepare(`INSERT INTO callback_deliveries
      (received_at, task_id, kie_task_id, verdict, http_status, content_type, signature, signature_timestamp, remote_address, body)
      VALUES (@receivedAt, @taskId, @kieTaskId, @verdict, @httpStatus, @contentType, @signature, @signatureTimestamp, @remoteAddress, @body)`),
    deliveriesFor: db.prepare('SELECT * FROM callback_deliveries WHERE task_id = ? ORDER BY id'),
    getSetting: db.prepare('SELECT value FROM settings WHERE name = ?'),
    insertSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
    ping: db.prepare('SELECT count(*) AS n FROM schema_migrations')
  }

  const finish = (id: string, outcome: Outcome, now: number, kieTaskId: string | null = null): boolean =>
    s.finish.run({
      id,
      now,
      kieTaskId,
      status: outcome.status,
      resultUrls: outcome.status === 'succeeded' ? JSON.stringify(outcome.resultUrls) : null,
      errorCode: outcome.status === 'failed' ? outcome.code : null,
      errorMessage: outcome.status === 'failed' ? outcome.message : null
    }).changes === 1

  return {
    createTask: (t: NewTask, now: number) => s.insertTask.get({ ...t, now }) as TaskRow,
    getTask: (id: string) => s.byId.get(id) as TaskRow | undefined,
    getOwnedTask: (id: string, owner: string) => s.byIdAndOwner.get(id, owner) as TaskRow | undefined,
    listTasks: (q: ListQuery): TaskRow[] =>
      (q.status ? s.listByStatus : s.list).all({
        owner: q.owner,
        status: q.status,
        beforeSeq: q.beforeSeq ?? Number.MAX_SAFE_INTEGER,
        limit: q.limit
      }) as TaskRow[],
    /** Claims a queued task for its one and only send; false if it was claimed already. */
    markSending: (id: string, now: number) => s.markSending.run({ id, now }).changes === 1,
    /** kie.ai accepted the task. A callback that already finished it keeps its state. */
    markSubmitted: db.transaction((id: string, kieTaskId: string, now: number): boolean => {
      if (s.markSubmitted.run({ id, kieTaskId, now }).changes === 1) return true
      s.learnKieTaskId.run({ id, kieTaskId })
      return false
    }),
    /** Forward-only: a task that is already final never changes. */
    finish,
    /** Stores the delivery and, when it carries an outcome, applies it, atomically. */
    recordCallback: db.transaction(
      (delivery: CallbackDelivery, apply?: { taskId: string; outcome: Outcome; kieTaskId: string | null }): boolean => {
        const changed = apply ? finish(apply.taskId, apply.outcome, delivery.receivedAt, apply.kieTaskId) : false
        // An outcome for a task that is already final is kept, but marked as having changed nothing.
        s.insertDelivery.run(apply && !changed ? { ...delivery, verdict: 'ignored_final' } : delivery)
        return changed
      }
    ),
    callbackDeliveries: (taskId: string) => s.deliveriesFor.all(taskId) as Array<Record<string, unknown>>,
    /** Returns the stored value, storing `make()` first if there is none. */
    getOrCreateSetting: (name: string, make: () => string): string => {
      s.insertSetting.run(name, make())
      return (s.getSetting.get(name) as { value: string }).value
    },
    appliedMigrations: () => (s.ping.get() as { n: number }).n
  }
}

export type Repository = ReturnType<typeof createRepository>
