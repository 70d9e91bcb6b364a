import type { Db } from './open.js'

/** How long each table that grows with traffic keeps its rows; null keeps them forever. */
export interface RetentionSettings {
  callbackLogMs: number | null
  webhookLogMs: number | null
  taskMs: number | null
  idempotencyMs: number
}

export interface PruneResult {
  callbackDeliveries: number
  webhookAttempts: number
  tasks: number
  idempotencyKeys: number
  /** Archived files of pruned tasks, to be removed from disk by the caller. */
  files: string[]
}

/** One bounded batch per table per pass: a pass never holds the database for long. */
export const PRUNE_BATCH = 500
const TASK_BATCH = 100

export function createRetention(db: Db) {
  const s = {
    callbackDeliveries: db.prepare(`DELETE FROM callback_deliveries WHERE id IN
      (SELECT id FROM callback_deliveries WHERE received_at < ? ORDER BY received_at LIMIT ${PRUNE_BATCH})`),
    webhookAttempts: db.prepare(`DELETE FROM webhook_attempts WHERE id IN
      (SELECT id FROM webhook_attempts WHERE at < ? ORDER BY at LIMIT ${PRUNE_BATCH})`),
    idempotencyKeys: db.prepare(`DELETE FROM idempotency_keys WHERE rowid IN
      (SELECT rowid FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ${PRUNE_BATCH})`),
    // Not while a webhook or an archive download of the task is still under way.
    finishedTasks: db.prepare(`SELECT id FROM tasks t WHERE status IN ('succeeded', 'failed') AND completed_at < ?
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.task_id = t.id AND d.state = 'pending')
        AND NOT EXISTS (SELECT 1 FROM result_files r WHERE r.task_id = t.id AND r.status = 'pending')
      ORDER BY completed_at LIMIT ${TASK_BATCH}`),
    filesOf: db.prepare(`SELECT path FROM result_files WHERE task_id = ? AND path IS NOT NULL`),
    // A task and everything kept about it.
    deleteTask: [
      'DELETE FROM task_events WHERE task_id = ?',
      'DELETE FROM callback_deliveries WHERE task_id = ?',
      'DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE task_id = ?)',
      'DELETE FROM webhook_deliveries WHERE task_id = ?',
      'DELETE FROM result_files WHERE task_id = ?',
      'DELETE FROM idempotency_keys WHERE task_id = ?',
      'DELETE FROM tasks WHERE id = ?'
    ].map((sql) => db.prepare(sql))
  }

  const pruneTasks = db.transaction((before: number) => {
    const ids = s.finishedTasks.all(before) as Array<{ id: string }>
    const files: string[] = []
    for (const { id } of ids) {
      files.push(...(s.filesOf.all(id) as Array<{ path: string }>).map((f) => f.path))
      for (const stmt of s.deleteTask) stmt.run(id)
    }
    return { tasks: ids.length, files }
  })

  return {
    /** One pass over every table; each statement is its own short transaction. */
    pruneOnce(now: number, r: RetentionSettings): PruneResult {
      const tasks = r.taskMs === null ? { tasks: 0, files: [] } : pruneTasks(now - r.taskMs)
      return {
        callbackDeliveries: r.callbackLogMs === null ? 0 : s.callbackDeliveries.run(now - r.callbackLogMs).changes,
        webhookAttempts: r.webhookLogMs === null ? 0 : s.webhookAttempts.run(now - r.webhookLogMs).changes,
        idempotencyKeys: s.idempotencyKeys.run(now - r.idempotencyMs).changes,
        ...tasks
      }
    }
  }
}

export type Retention = ReturnType<typeof createRetention>
