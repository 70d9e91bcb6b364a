import type Database from 'better-sqlite3'
import type { Db } from './open.js'
import type { TaskStatus, TaskType } from './rows.js'

/**
 * Verdicts of callback deliveries that were answered 200 (src/routes/callbacks.ts): kie.ai's
 * own, read or kept. Every other verdict is a refusal (bad token or signature, unknown task,
 * too large, malformed).
 */
export const ANSWERED_VERDICTS = ['accepted', 'ignored_final', 'duplicate_upstream_task', 'ambiguous'] as const

/** Callback deliveries of one task shown to an operator: the latest ones, at most this many. */
export const ADMIN_CALLBACKS_MAX = 200

/** What the operator's task list shows of a task, of any client. */
export interface AdminTaskListRow {
  seq: number
  id: string
  owner: string
  type: TaskType
  status: TaskStatus
  kie_task_id: string | null
  params: string | null
  water_mark: string | null
  error_code: string | null
  created_at: number
  updated_at: number
}

export interface AdminListQuery {
  /** The owner: `name:<name>` or a key's fingerprint. */
  owner?: string | undefined
  type?: TaskType | undefined
  status?: TaskStatus | undefined
  /** A gateway task id or a kie.ai task id, matched exactly. */
  q?: string | undefined
  beforeSeq?: number | undefined
  limit: number
}

export interface AdminCallbackRow {
  id: number
  received_at: number
  verdict: string
  http_status: number
  content_type: string | null
  remote_address: string | null
  signature: string | null
  body: string
  body_bytes: number | null
  body_sha256: string | null
}

const LIST_COLUMNS = 'seq, id, owner, type, status, kie_task_id, params, water_mark, error_code, created_at, updated_at'

/**
 * The admin API's reads across every client. The task list is one statement per combination
 * of filters, holding only the filters given, so each is a range scan of its index:
 * (owner, seq), (owner, status, seq), (owner, type, seq), (status, seq), (type, seq), the
 * primary key, and for `q` the unique id and the kie.ai id.
 */
export function createAdminQueries(db: Db) {
  const lists = new Map<string, Database.Statement>()
  const listStatement = (q: AdminListQuery) => {
    const key = [q.owner, q.type, q.status, q.q].map((v) => (v === undefined ? '-' : '+')).join('')
    let stmt = lists.get(key)
    if (stmt === undefined) {
      const where = ['seq < @beforeSeq']
      if (q.owner !== undefined) where.push('owner = @owner')
      if (q.type !== undefined) where.push('type = @type')
      if (q.status !== undefined) where.push('status = @status')
      if (q.q !== undefined) where.push('seq IN (SELECT seq FROM tasks WHERE id = @q UNION ALL SELECT seq FROM tasks WHERE kie_task_id = @q)')
      stmt = db.prepare(`SELECT ${LIST_COLUMNS} FROM tasks WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT @limit`)
      lists.set(key, stmt)
    }
    return stmt
  }

  const s = {
    refused: db.prepare(`SELECT verdict, count(*) AS n FROM callback_deliveries
      WHERE received_at >= ? AND verdict NOT IN (${ANSWERED_VERDICTS.map((v) => `'${v}'`).join(', ')})
      GROUP BY verdict ORDER BY n DESC, verdict`),
    callbacks: db.prepare(`SELECT * FROM (SELECT id, received_at, verdict, http_status, content_type, remote_address, signature,
        body, body_bytes, body_sha256 FROM callback_deliveries WHERE task_id = ? ORDER BY id DESC LIMIT ${ADMIN_CALLBACKS_MAX})
      ORDER BY id`)
  }

  return {
    /** Every client's tasks, newest first; each filter given narrows it. */
    listTasks(q: AdminListQuery): AdminTaskListRow[] {
      const params: Record<string, unknown> = { beforeSeq: q.beforeSeq ?? Number.MAX_SAFE_INTEGER, limit: q.limit }
      if (q.owner !== undefined) params.owner = q.owner
      if (q.type !== undefined) params.type = q.type
      if (q.status !== undefined) params.status = q.status
      if (q.q !== undefined) params.q = q.q
      return listStatement(q).all(params) as AdminTaskListRow[]
    },
    /** Refused callback deliveries stored since `since`, per verdict, most frequent first. */
    refusedCallbacks: (since: number) => s.refused.all(since) as Array<{ verdict: string; n: number }>,
    /** A task's callback deliveries, oldest first (the latest ADMIN_CALLBACKS_MAX). */
    callbacks: (taskId: string) => s.callbacks.all(taskId) as AdminCallbackRow[]
  }
}

export type AdminQueries = ReturnType<typeof createAdminQueries>
