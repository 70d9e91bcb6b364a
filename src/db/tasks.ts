import type { Db } from './open.js'
import type { ErrorCode } from '../errors.js'
import type { FinalWrites, ListQuery, NewTask, Outcome, RepositoryHooks, ResultFileView, StatusSource, TaskRow, TaskStatus, TaskType, TaskViewRow } from './rows.js'

// A client's read (TaskViewRow): only the columns it shows, and a succeeded task's files in the
// same statement. A point read's cost is mostly one object property per column, and each
// statement takes and drops the database's read lock: two statements cost twice that.
const VIEW = `seq, id, type, status, parent_id, parent_task_id, image_index, water_mark, params, kie_task_id, result_urls,
  error_code, error_message, send_state, next_attempt_at, webhook_url, created_at, updated_at, completed_at,
  CASE WHEN status = 'succeeded' THEN (SELECT json_group_array(json_object('idx', idx, 'status', status, 'bytes', bytes,
    'sha256', sha256, 'content_type', content_type, 'error', error))
    FROM (SELECT * FROM result_files WHERE task_id = tasks.id ORDER BY idx)) END AS files`

type ViewRowAsRead = Omit<TaskViewRow, 'files'> & { files: string | null }
const viewRow = (r: ViewRowAsRead | undefined): TaskViewRow | undefined =>
  r && { ...r, files: r.files === null ? [] : (JSON.parse(r.files) as ResultFileView[]) }

const taskValues = (t: NewTask, now: number) => ({
  ...t,
  type: t.type ?? 'upscale',
  parentId: t.parentId ?? null,
  params: t.params ? JSON.stringify(t.params) : null,
  webhookUrl: t.webhookUrl ?? null,
  now
})

export interface TasksDeps {
  hooks: RepositoryHooks
  /** What a final transition may write in its own transaction (see src/tasks/on-final.ts). */
  writes: Pick<FinalWrites, 'queueResults' | 'enqueueWebhook'>
}

/** Tasks: creation, reading, the final transition (`finish`), reconciliation and sweeps. */
export function createTasks(db: Db, { hooks, writes }: TasksDeps) {
  const s = {
    insertTask: db.prepare(`INSERT INTO tasks
      (id, owner, type, status, parent_id, parent_task_id, image_index, water_mark, params, webhook_url, next_attempt_at,
       submit_deadline_at, created_at, updated_at, last_activity_at)
      VALUES (@id, @owner, @type, 'queued', @parentId, @parentTaskId, @imageIndex, @waterMark, @params, @webhookUrl, @now,
       @submitDeadlineAt, @now, @now, @now)
      RETURNING *`),
    byId: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    byIdAndOwner: db.prepare('SELECT * FROM tasks WHERE id = ? AND owner = ?'),
    viewById: db.prepare(`SELECT ${VIEW} FROM tasks WHERE id = ?`),
    viewByIdAndOwner: db.prepare(`SELECT ${VIEW} FROM tasks WHERE id = ? AND owner = ?`),
    // NULL filters match everything; the owner's indexes keep each variant a range scan.
    list: db.prepare(`SELECT ${VIEW} FROM tasks WHERE owner = @owner AND seq < @beforeSeq
        AND (@type IS NULL OR type = @type) AND (@status IS NULL OR status = @status)
      ORDER BY seq DESC LIMIT @limit`),
    // Chained tasks: released when their parent succeeds, with the same time to be sent as they had.
    releaseChildren: db.prepare(`UPDATE tasks SET parent_task_id = @kieTaskId, next_attempt_at = @now,
        submit_deadline_at = @now + (submit_deadline_at - created_at), updated_at = @now
      WHERE parent_id = @parentId AND status = 'queued' AND parent_task_id IS NULL`),
    waitingChildren: db.prepare(`SELECT id FROM tasks WHERE parent_id = ? AND status = 'queued' AND parent_task_id IS NULL`),
    finish: db.prepare(`UPDATE tasks SET status = @status, status_source = @source, result_urls = @resultUrls,
        error_code = @errorCode, error_message = @errorMessage, kie_task_id = coalesce(kie_task_id, @kieTaskId),
        completed_at = @completedAt, updated_at = @now, last_activity_at = @now, lease_owner = NULL, lease_until = NULL
      WHERE id = @id AND status IN ('queued', 'submitted') RETURNING *`),

    // A callback that settles nothing: ask record-info at once (and learn the kie.ai id if lost).
    reconcileNow: db.prepare(`UPDATE tasks SET reconcile_at = @now, kie_task_id = coalesce(kie_task_id, @kieTaskId),
        last_activity_at = CASE WHEN @alive = 1 THEN @now ELSE last_activity_at END
      WHERE id = @id AND status = 'submitted'`),
    learnKieTaskIdWhileSending: db.prepare(`UPDATE tasks SET kie_task_id = @kieTaskId
      WHERE id = @id AND status = 'queued' AND send_state = 'sending' AND kie_task_id IS NULL`),

    // Reconciliation and sweeps.
    dueForReconcile: db.prepare(`SELECT * FROM tasks
      WHERE status = 'submitted' AND kie_task_id IS NOT NULL AND reconcile_at <= @now
      ORDER BY reconcile_at LIMIT @limit`),
    noteReconcile: db.prepare(`UPDATE tasks SET reconcile_at = @nextAt, reconcile_attempts = reconcile_attempts + 1,
        upstream_state = @state,
        last_activity_at = CASE WHEN @alive = 1 THEN @now ELSE last_activity_at END
      WHERE id = @id AND status = 'submitted'`),
    // A task due for a poll gets that poll first: record-info may hold its outcome.
    timedOut: db.prepare(`SELECT id FROM tasks WHERE status = 'submitted' AND kie_task_id IS NOT NULL
      AND last_activity_at <= @before AND (reconcile_at IS NULL OR reconcile_at > @now) LIMIT 500`),
    unknownExpired: db.prepare(`SELECT id FROM tasks WHERE status = 'submitted' AND kie_task_id IS NULL AND sent_at <= ? LIMIT 500`),
    pastDeadline: db.prepare(`SELECT id FROM tasks
      WHERE status = 'queued' AND send_state = 'pending' AND submit_deadline_at <= ?
        AND (parent_id IS NULL OR parent_task_id IS NOT NULL) LIMIT 500`),
    counts: db.prepare('SELECT type, status, n FROM task_counts'),
    eventsFor: db.prepare('SELECT from_status, to_status, source, at FROM task_events WHERE task_id = ? ORDER BY id')
  }

  /**
   * The one way a task becomes final; forward-only: a task that is already final never changes.
   * What follows from it is src/tasks/on-final.ts's (the `onFinal` hook), in and after this transaction.
   */
  const finish = db.transaction((
    id: string,
    outcome: Outcome,
    now: number,
    source: StatusSource,
    kieTaskId: string | null = null,
    completedAt: number = now
  ): boolean => {
    const row = s.finish.get({
      id,
      now,
      source,
      kieTaskId,
      completedAt,
      status: outcome.status,
      resultUrls: outcome.status === 'succeeded' ? JSON.stringify(outcome.resultUrls) : null,
      errorCode: outcome.status === 'failed' ? outcome.code : null,
      errorMessage: outcome.status === 'failed' ? outcome.message : null
    }) as TaskRow | undefined
    if (row === undefined) return false
    hooks.onFinal?.inTransaction(row, outcome, now, { ...writes, releaseChildren, failChildren })
    // Deferred: the transaction around this call must commit before anyone reads the result.
    if (hooks.onFinal) setImmediate(hooks.onFinal.afterCommit, id)
    return true
  })

  function releaseChildren(parentId: string, kieTaskId: string, now: number): number {
    return s.releaseChildren.run({ parentId, kieTaskId, now }).changes
  }
  // Recursive through finish: a failed child fails its own waiting children in the same transaction.
  function failChildren(parentId: string, now: number, message: string): void {
    for (const { id } of s.waitingChildren.all(parentId) as Array<{ id: string }>) {
      finish(id, { status: 'failed', code: 'GW_PARENT_FAILED', message }, now, 'parent')
    }
  }

  const failEach = (ids: Array<{ id: string }>, code: ErrorCode, message: string, now: number, source: StatusSource) =>
    ids.filter(({ id }) => finish(id, { status: 'failed', code, message }, now, source)).map(({ id }) => id)

  return {
    createTask: (t: NewTask, now: number) => s.insertTask.get(taskValues(t, now)) as TaskRow,
    getTask: (id: string) => s.byId.get(id) as TaskRow | undefined,
    getOwnedTask: (id: string, owner: string) => s.byIdAndOwner.get(id, owner) as TaskRow | undefined,
    /** What a read shows of a task (see VIEW); readOwnedTask is scoped to its owner. */
    readTask: (id: string) => viewRow(s.viewById.get(id) as ViewRowAsRead | undefined),
    readOwnedTask: (id: string, owner: string) => viewRow(s.viewByIdAndOwner.get(id, owner) as ViewRowAsRead | undefined),
    listTasks: (q: ListQuery): TaskViewRow[] =>
      (s.list.all({
        owner: q.owner,
        type: q.type ?? null,
        status: q.status ?? null,
        beforeSeq: q.beforeSeq ?? Number.MAX_SAFE_INTEGER,
        limit: q.limit
      }) as ViewRowAsRead[]).map((r) => viewRow(r) as TaskViewRow),
    finish,
    /**
     * An ambiguous signal: a submitted task is polled at once; a task still sending only learns
     * its kie.ai id. Returns whether a submitted task changed.
     */
    reconcileNow: (id: string, now: number, kieTaskId: string | null, alive: boolean): boolean => {
      const args = { id, now, kieTaskId, alive: alive ? 1 : 0 }
      const changed = s.reconcileNow.run(args).changes === 1
      if (!changed && kieTaskId !== null) s.learnKieTaskIdWhileSending.run(args)
      return changed
    },

    dueForReconcile: (now: number, limit: number) => s.dueForReconcile.all({ now, limit }) as TaskRow[],
    noteReconcile: (id: string, now: number, nextAt: number, state: string, alive: boolean) =>
      s.noteReconcile.run({ id, now, nextAt, state, alive: alive ? 1 : 0 }).changes === 1,
    failTimedOut: (now: number, timeoutMs: number, message: string) =>
      failEach(s.timedOut.all({ before: now - timeoutMs, now }) as Array<{ id: string }>, 'GW_TIMEOUT', message, now, 'timeout'),
    failUnknownOutcomes: (now: number, afterMs: number, message: string) =>
      failEach(s.unknownExpired.all(now - afterMs) as Array<{ id: string }>, 'GW_UPSTREAM_OUTCOME_UNKNOWN', message, now, 'timeout'),
    failPastDeadline: (now: number, message: string) =>
      failEach(s.pastDeadline.all(now) as Array<{ id: string }>, 'GW_UPSTREAM_UNAVAILABLE', message, now, 'deadline'),
    /** Twelve rows kept by triggers: cheap on every scrape. */
    counts: () => s.counts.all() as Array<{ type: TaskType; status: TaskStatus; n: number }>,
    /** Per status, every kind together. */
    statusCounts: () => {
      const by = new Map<TaskStatus, number>()
      for (const { status, n } of s.counts.all() as Array<{ status: TaskStatus; n: number }>) by.set(status, (by.get(status) ?? 0) + n)
      return [...by].map(([status, n]) => ({ status, n }))
    },
    taskEvents: (taskId: string) =>
      s.eventsFor.all(taskId) as Array<{ from_status: TaskStatus | null; to_status: TaskStatus; source: StatusSource; at: number }>
  }
}

export type Tasks = ReturnType<typeof createTasks>
